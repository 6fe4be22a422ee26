//! Crypto venue books on NATS: the ingest's side publishes them, a gateway's mirrors them.
//!
//! Core NATS (not JetStream): every update carries whole frames, so the next frame of a book
//! repairs a lost one, and every book's current frame goes out once a second
//! ([`FULL_EVERY`]) for gateways that start or missed messages. Trades lost while NATS is
//! away are not replayed. Subjects: `mbo.venue.{symbol index}` (updates, full states) and
//! `mbo.venue.health` (the connections' health JSON, once a second). The layout of the hub
//! travels in the ingest's status ([`mbo_api::venues::mirror::MirrorLayout`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;
use mbo_api::venues::hub::VenueHub;
use mbo_api::venues::mirror;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Every book's frame (and the health) at least this often.
pub const FULL_EVERY: Duration = Duration::from_secs(1);
/// Subject of the health JSON.
pub const HEALTH_SUBJECT: &str = "mbo.venue.health";

fn subject(symbol: usize) -> String {
    format!("mbo.venue.{symbol}")
}

/// Ingest: publishes every symbol's updates and, once a second, full states and health.
pub fn publish(client: Client, hub: Arc<VenueHub>, shutdown: CancellationToken) {
    for si in 0..hub.symbols.len() {
        let (client, hub, shutdown) = (client.clone(), hub.clone(), shutdown.clone());
        tokio::spawn(async move {
            let Some(entry) = hub.symbols.get(si) else {
                return;
            };
            let mut updates = entry.updates.subscribe();
            let mut full = tokio::time::interval(FULL_EVERY);
            let mut buf = Vec::new();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    u = updates.recv() => match u {
                        Ok(batch) => mirror::encode_update(si, &batch, &hub, &mut buf),
                        // Whole frames follow: the books catch up; skipped trades are lost.
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(symbol = %entry.symbol, skipped = n, "venue relay lagged");
                            mirror::encode_full(si, &hub, &mut buf);
                        }
                        Err(RecvError::Closed) => return,
                    },
                    _ = full.tick() => mirror::encode_full(si, &hub, &mut buf),
                }
                if let Err(e) = client
                    .publish(subject(si), Bytes::copy_from_slice(&buf))
                    .await
                {
                    tracing::debug!(error = %e, "venue update not published");
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FULL_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let json = Bytes::clone(&hub.health_json.load());
            if let Err(e) = client.publish(HEALTH_SUBJECT, json).await {
                tracing::debug!(error = %e, "venue health not published");
            }
        }
    });
}

/// Gateway: applies the ingest's venue messages to `hub` until `shutdown`.
pub async fn mirror(client: Client, hub: Arc<VenueHub>, shutdown: CancellationToken) {
    let mut sub = match client.subscribe("mbo.venue.>").await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot follow the ingest's crypto venues");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return,
            m = sub.next() => match m {
                Some(m) => m,
                None => return,
            },
        };
        if msg.subject.as_str() == HEALTH_SUBJECT {
            mirror::store_health(&hub, msg.payload);
        } else if let Err(e) = mirror::apply_update(&hub, &msg.payload) {
            tracing::warn!(error = %e, subject = %msg.subject, "venue update dropped");
        }
    }
}
