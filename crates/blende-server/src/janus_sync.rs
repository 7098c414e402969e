//! Janus rooms kept in line with the room server's members, on a task of its own: the hub
//! never waits on a Janus HTTP call, however slow or unreachable Janus is.
//!
//! The hub states what it wants ([`JanusSync::want`]: a meeting's admitted members, or that
//! it ended); a newer state replaces one not yet handled, so a burst of changes costs one
//! round of Janus calls. The [`Worker`] creates the room at the threshold, gives each member a
//! token and two random feed ids, revokes and kicks on removal, and every
//! [`AUDIT_EVERY`] lists each room's publishers and kicks every one that is not an admitted
//! member's feed under that member's name (or their share's, while they may share).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;
use blende_room::JanusMember;
use blende_room::protocol::{ParticipantId, Secret, ServerMsg, screen_display};
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};

use crate::inbox::HubInput;
use crate::janus::{self, JanusConfig, JanusRoom, Publisher, Session};
use crate::tag::log_tag;

/// How often every Janus room's publishers are compared with the members.
pub const AUDIT_EVERY: Duration = Duration::from_millis(500);

/// What a meeting's Janus room should look like.
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    pub members: Vec<JanusMember>,
    pub ended: bool,
}

/// The hub's end: non-blocking, coalescing.
#[derive(Clone, Debug, Default)]
pub struct JanusSync {
    pending: Arc<Mutex<HashMap<String, Wanted>>>,
    wake: Arc<Notify>,
}

impl JanusSync {
    /// Replaces whatever was wanted for this meeting and not yet handled.
    pub fn want(&self, meeting_id: &str, wanted: Wanted) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(meeting_id.to_owned(), wanted);
        self.wake.notify_one();
    }

    fn take(&self) -> HashMap<String, Wanted> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// One member's access to a Janus room.
#[derive(Debug)]
struct Access {
    member: JanusMember,
    token: Secret,
    feed: u64,
    screen_feed: u64,
}

impl Access {
    fn new(member: JanusMember) -> Result<Self> {
        Ok(Access { member, token: janus::new_token()?, feed: janus::random_id()?, screen_feed: janus::random_id()? })
    }

    /// Whether this publisher is one of this member's feeds, as they may publish it now.
    fn owns(&self, p: &Publisher) -> bool {
        let display = p.display.as_deref();
        (p.feed == self.feed && display == Some(self.member.display_name.as_str()))
            || (p.feed == self.screen_feed && self.member.may_share && display == Some(screen_display(&self.member.display_name).as_str()))
    }
}

#[derive(Debug)]
struct Synced {
    room: JanusRoom,
    members: HashMap<ParticipantId, Access>,
}

#[derive(Debug)]
pub struct Worker {
    cfg: JanusConfig,
    sync: JanusSync,
    hub: mpsc::Sender<HubInput>,
    /// Camera and share feeds of a full meeting.
    max_publishers: usize,
    rooms: HashMap<String, Synced>,
}

impl Worker {
    pub fn new(cfg: JanusConfig, max_participants: usize, sync: JanusSync, hub: mpsc::Sender<HubInput>) -> Self {
        Worker { cfg, sync, hub, max_publishers: max_participants * 2, rooms: HashMap::new() }
    }

    pub async fn run(mut self) {
        let mut audit = tokio::time::interval(AUDIT_EVERY);
        audit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let audit_all = tokio::select! {
                () = self.sync.wake.notified() => false,
                _ = audit.tick() => true,
            };
            for (meeting_id, wanted) in self.sync.take() {
                if let Err(e) = self.apply(&meeting_id, wanted).await {
                    warn!(meeting = %log_tag(&meeting_id), error = %e, "Janus room not in line with the meeting");
                }
            }
            if audit_all && !self.rooms.is_empty() {
                // One Janus session for the whole round, not one per room and request.
                match Session::open(&self.cfg.api_url).await {
                    Ok(session) => {
                        for meeting_id in self.rooms.keys() {
                            self.audit(&session, meeting_id).await;
                        }
                        session.close().await;
                    }
                    Err(e) => warn!(error = %e, "Janus unreachable; rooms not audited this round"),
                }
            }
            if self.hub.is_closed() {
                break;
            }
        }
    }

    async fn apply(&mut self, meeting_id: &str, wanted: Wanted) -> Result<()> {
        if wanted.ended {
            if let Some(synced) = self.rooms.remove(meeting_id) {
                janus::destroy(&self.cfg, &synced.room).await?;
            }
            return Ok(());
        }
        let mut fresh = Vec::new();
        if let Some(synced) = self.rooms.get_mut(meeting_id) {
            // Gone: token revoked, both feeds kicked (kicking a feed that is not there fails
            // harmlessly).
            let gone: Vec<ParticipantId> =
                synced.members.keys().filter(|p| !wanted.members.iter().any(|m| m.participant == **p)).copied().collect();
            for p in gone {
                let Some(access) = synced.members.remove(&p) else { continue };
                if let Err(e) = janus::allow(&self.cfg, &synced.room, &access.token, false).await {
                    warn!(meeting = %log_tag(meeting_id), error = %e, "revoking a Janus token failed");
                }
                let _ = janus::kick(&self.cfg, &synced.room, access.feed).await;
                let _ = janus::kick(&self.cfg, &synced.room, access.screen_feed).await;
            }
            for member in wanted.members {
                match synced.members.get_mut(&member.participant) {
                    Some(access) => access.member = member,
                    None => {
                        let access = Access::new(member)?;
                        janus::allow(&self.cfg, &synced.room, &access.token, true).await?;
                        fresh.push(access.member.participant);
                        synced.members.insert(access.member.participant, access);
                    }
                }
            }
        } else {
            if wanted.members.len() < self.cfg.threshold {
                return Ok(());
            }
            let members: HashMap<ParticipantId, Access> =
                wanted.members.into_iter().map(|m| Ok((m.participant, Access::new(m)?))).collect::<Result<_>>()?;
            let tokens: Vec<Secret> = members.values().map(|a| a.token.clone()).collect();
            let room = janus::create_room(&self.cfg, &tokens, self.max_publishers).await?;
            info!(meeting = %log_tag(meeting_id), members = members.len(), "meeting moved to Janus");
            fresh.extend(members.keys().copied());
            self.rooms.insert(meeting_id.to_owned(), Synced { room, members });
        }
        self.deliver(meeting_id, &fresh).await;
        let session = Session::open(&self.cfg.api_url).await?;
        self.audit(&session, meeting_id).await;
        session.close().await;
        Ok(())
    }

    /// Tells fresh members how to join (through the hub, which checks they are still there).
    async fn deliver(&self, meeting_id: &str, fresh: &[ParticipantId]) {
        let Some(synced) = self.rooms.get(meeting_id) else { return };
        for p in fresh {
            let Some(a) = synced.members.get(p) else { continue };
            let msg = ServerMsg::Janus {
                url: self.cfg.client_url.clone(),
                room: synced.room.room,
                pin: synced.room.pin.clone(),
                token: a.token.clone(),
                feed: a.feed,
                screen_feed: a.screen_feed,
            };
            let input = HubInput::Deliver { conn: a.member.conn, participant: *p, msg };
            if self.hub.send(input).await.is_err() {
                return;
            }
        }
    }

    /// Kicks every publisher in the room that no member owns.
    async fn audit(&self, session: &Session, meeting_id: &str) {
        let Some(synced) = self.rooms.get(meeting_id) else { return };
        let publishers = match session.list_participants(&synced.room).await {
            Ok(p) => p,
            Err(e) => {
                warn!(meeting = %log_tag(meeting_id), error = %e, "listing the Janus room's publishers failed");
                return;
            }
        };
        for stray in publishers.iter().filter(|p| !synced.members.values().any(|a| a.owns(p))) {
            match session.kick(&synced.room, stray.feed).await {
                Ok(()) => info!(meeting = %log_tag(meeting_id), "kicked a Janus publisher that is no member's feed"),
                Err(e) => warn!(meeting = %log_tag(meeting_id), error = %e, "kicking a stray Janus publisher failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use blende_room::ConnId;

    use super::*;

    fn access(may_share: bool) -> Access {
        let member = JanusMember { conn: ConnId(1), participant: ParticipantId(7), display_name: "Amt A".into(), may_share };
        Access { member, token: Secret::new("t"), feed: 100, screen_feed: 200 }
    }

    fn publisher(feed: u64, display: &str) -> Publisher {
        Publisher { feed, display: Some(display.to_owned()) }
    }

    #[test]
    fn a_member_owns_their_feeds_under_their_name_only() {
        let (a, sharer) = (access(false), access(true));
        assert!(a.owns(&publisher(100, "Amt A")));
        assert!(!a.owns(&publisher(100, "Amt B")), "someone else's name on the feed");
        assert!(!a.owns(&Publisher { feed: 100, display: None }));
        assert!(!a.owns(&publisher(101, "Amt A")), "an id the server did not hand out");
        assert!(!a.owns(&publisher(200, "Amt A (screen)")), "a share without the right to share");
        assert!(sharer.owns(&publisher(200, "Amt A (screen)")));
        assert!(!sharer.owns(&publisher(200, "Amt A")), "the share feed under the camera's name");
    }
}
