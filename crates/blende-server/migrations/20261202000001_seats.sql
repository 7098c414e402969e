-- Seats of running meetings, so that a restart of the server does not end them: what a
-- participant's `resume` restores. Only the SHA-256 of the resume token is kept. A row goes
-- when the participant leaves, is removed or denied, the meeting ends, or the grace period
-- after their connection dropped runs out.
CREATE TABLE seats (
    token_hash TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    -- the moderator's id, for a moderator
    moderator_id TEXT,
    presenter BIGINT NOT NULL,
    -- 0: waiting in the lobby
    admitted BIGINT NOT NULL,
    -- Unix seconds until which a seat whose connection dropped is kept; NULL while connected
    away_until BIGINT
);
CREATE INDEX seats_meeting ON seats (meeting_id);

-- The moderators' switches, which a restart keeps too.
ALTER TABLE meetings ADD COLUMN locked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE meetings ADD COLUMN chat BIGINT NOT NULL DEFAULT 1;
