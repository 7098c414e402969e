//! Persistence through `sqlx::Any`: one code path for SQLite (embedded default) and
//! PostgreSQL (several server instances). Queries use only `$n` placeholders, TEXT and BIGINT,
//! which both databases accept.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use blende_room::protocol::MeetingInfo;
use blende_room::{AuditEntry, MeetingRecord, SeatRecord};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

#[derive(Debug)]
pub struct ModeratorRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// `sqlite:` URLs without a mode get `mode=rwc`, so a fresh path is created.
fn normalise_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

/// The database kind, for logs (never the URL: it may hold a password).
pub fn kind_of(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        "postgres"
    } else {
        "unknown"
    }
}

/// PostgreSQL on another host carries password hashes, the TURN secret and the Janus admin
/// key: only over TLS that checks the server's certificate and name (`sslmode=verify-full`,
/// the CA from `sslrootcert=FILE` or the built-in web roots). Loopback and Unix sockets may
/// go without.
pub fn check_transport(url: &str) -> Result<()> {
    if kind_of(url) != "postgres" {
        return Ok(());
    }
    let (before, query) = url.split_once('?').unwrap_or((url, ""));
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
    let authority = before.split_once("://").map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = param("host").unwrap_or(host);
    let local = host.is_empty()
        || host.starts_with('/')
        || host.starts_with("%2F")
        || host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if local || param("sslmode") == Some("verify-full") {
        return Ok(());
    }
    anyhow::bail!(
        "PostgreSQL on {host} needs sslmode=verify-full in the database URL (and sslrootcert=CA-FILE unless a public CA signed its certificate): password hashes and server secrets must not cross the network in clear"
    )
}

impl Store {
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let kind = kind_of(url);
        anyhow::ensure!(kind != "unknown", "database URL must start with sqlite: or postgres:");
        check_transport(url)?;
        // SQLite serialises writers anyway; one connection avoids "database is locked".
        let max = if kind == "sqlite" { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .connect(&normalise_url(url))
            .await
            .with_context(|| format!("opening the {kind} database"))?;
        MIGRATOR.run(&pool).await.context("running database migrations")?;
        Ok(Store { pool })
    }

    // ---- settings ----

    pub async fn settings(&self) -> Result<BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM settings").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?))).collect()
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE key = $1").bind(key).execute(&self.pool).await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2)").bind(key).bind(value).execute(&self.pool).await?;
        Ok(())
    }

    // ---- moderators ----

    pub async fn add_moderator(&self, id: &str, name: &str, token_hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO moderators (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(token_hash)
            .bind(unix_now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn remove_moderator(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM moderators WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn moderators(&self) -> Result<Vec<ModeratorRow>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM moderators ORDER BY created_at, id").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(ModeratorRow { id: r.try_get(0)?, name: r.try_get(1)?, created_at: r.try_get(2)? })).collect()
    }

    pub async fn moderator_token_hash(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT token_hash FROM moderators WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    // ---- meetings ----

    pub async fn insert_meeting(&self, info: &MeetingInfo, created_by: &str, password_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meetings (id, title, starts_at, duration_min, lobby, password_hash, created_by, created_at, ended_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(compact(&info.id))
        .bind(&info.title)
        .bind(info.starts_at_unix)
        .bind(i64::from(info.duration_min))
        .bind(i64::from(info.lobby))
        .bind(password_hash)
        .bind(created_by)
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn end_meeting(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE meetings SET ended_at = $1 WHERE id = $2").bind(unix_now()).bind(compact(id)).execute(&self.pool).await?;
        sqlx::query("DELETE FROM seats WHERE meeting_id = $1").bind(compact(id)).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn set_meeting_switches(&self, id: &str, locked: bool, chat: bool) -> Result<()> {
        sqlx::query("UPDATE meetings SET locked = $1, chat = $2 WHERE id = $3")
            .bind(i64::from(locked))
            .bind(i64::from(chat))
            .bind(compact(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- seats (what a resume restores, across restarts) ----

    /// Inserts or replaces a seat; `away_until` in Unix seconds, `None` while connected.
    pub async fn keep_seat(&self, seat: &SeatRecord, away_until: Option<i64>) -> Result<()> {
        sqlx::query("DELETE FROM seats WHERE token_hash = $1").bind(&seat.token_hash).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO seats (token_hash, meeting_id, display_name, moderator_id, presenter, admitted, away_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&seat.token_hash)
        .bind(&seat.meeting)
        .bind(&seat.display_name)
        .bind(seat.moderator.as_deref())
        .bind(i64::from(seat.presenter))
        .bind(i64::from(seat.admitted))
        .bind(away_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn drop_seat(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM seats WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// The seats still worth keeping at start-up, with their `away_until`: expired ones, those
    /// of ended meetings and of removed moderators are deleted first.
    pub async fn seats(&self) -> Result<Vec<(SeatRecord, Option<i64>)>> {
        sqlx::query("DELETE FROM seats WHERE away_until < $1").bind(unix_now()).execute(&self.pool).await?;
        sqlx::query("DELETE FROM seats WHERE meeting_id IN (SELECT id FROM meetings WHERE ended_at IS NOT NULL)")
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM seats WHERE moderator_id IS NOT NULL AND moderator_id NOT IN (SELECT id FROM moderators)")
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query("SELECT token_hash, meeting_id, display_name, moderator_id, presenter, admitted, away_until FROM seats")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let (presenter, admitted): (i64, i64) = (r.try_get(4)?, r.try_get(5)?);
                let seat = SeatRecord {
                    token_hash: r.try_get(0)?,
                    meeting: r.try_get(1)?,
                    display_name: r.try_get(2)?,
                    moderator: r.try_get(3)?,
                    presenter: presenter != 0,
                    admitted: admitted != 0,
                };
                Ok((seat, r.try_get(6)?))
            })
            .collect()
    }

    pub async fn meetings(&self) -> Result<Vec<MeetingRecord>> {
        let rows = sqlx::query(
            "SELECT id, title, starts_at, duration_min, lobby, password_hash, created_by, ended_at, locked, chat FROM meetings ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(meeting_from_row).collect()
    }

    // ---- audit ----

    pub async fn audit(&self, id: &str, entry: &AuditEntry) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (id, at, moderator_id, action, meeting_id, target) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(unix_now())
            .bind(&entry.moderator_id)
            .bind(entry.action)
            .bind(entry.meeting_id.as_deref())
            .bind(entry.target.map(|t| i64::try_from(t.0).unwrap_or(i64::MAX)))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn audit_entries(&self) -> Result<Vec<(i64, String, String, Option<String>)>> {
        let rows = sqlx::query("SELECT at, moderator_id, action, meeting_id FROM audit_log ORDER BY at, id").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
    }

    pub async fn prune_audit(&self, older_than_unix: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM audit_log WHERE at < $1").bind(older_than_unix).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }
}

fn compact(id: &str) -> String {
    id.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

fn meeting_from_row(r: &AnyRow) -> Result<MeetingRecord> {
    let id: String = r.try_get(0)?;
    let grouped = blende_meeting::MeetingId::parse(&id).map(|m| m.to_string()).unwrap_or(id);
    let duration: i64 = r.try_get(3)?;
    let lobby: i64 = r.try_get(4)?;
    let ended_at: Option<i64> = r.try_get(7)?;
    let (locked, chat): (i64, i64) = (r.try_get(8)?, r.try_get(9)?);
    Ok(MeetingRecord {
        info: MeetingInfo {
            id: grouped,
            title: r.try_get(1)?,
            starts_at_unix: r.try_get(2)?,
            duration_min: u32::try_from(duration).unwrap_or(60),
            lobby: lobby != 0,
        },
        created_by: r.try_get(6)?,
        password_hash: r.try_get(5)?,
        ended: ended_at.is_some(),
        locked: locked != 0,
        chat: chat != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::check_transport;

    #[test]
    fn postgres_elsewhere_needs_verified_tls() {
        for ok in [
            "sqlite:/var/lib/blende-server/blende.db",
            "postgres://blende@127.0.0.1:5432/blende",
            "postgres://blende@localhost/blende",
            "postgres://blende@[::1]:5432/blende",
            "postgres:///blende?host=/run/postgresql",
            "postgres://u:p@db.example.org/blende?sslmode=verify-full&sslrootcert=/etc/blende-server/db-ca.pem",
        ] {
            assert!(check_transport(ok).is_ok(), "{ok}");
        }
        for bad in [
            "postgres://u:p@db.example.org/blende",
            "postgres://u:p@db.example.org/blende?sslmode=require",
            "postgresql://u@10.0.0.5:5432/blende?sslmode=verify-ca",
            "postgres://u@db.example.org/blende?host=db.example.org&sslmode=prefer",
        ] {
            let e = check_transport(bad).expect_err(bad).to_string();
            assert!(e.contains("sslmode=verify-full") && !e.contains("u:p"), "{e}");
        }
    }
}
