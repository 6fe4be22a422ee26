//! [`Application`]: binds the listener, starts the engine on a feed, serves until stopped.
//!
//! Building binds at once (port 0 picks a free port, which [`Application::port`] reports), so
//! a caller can print the URL before serving. Stopping cancels one token: streams end, the
//! engine stops, and the HTTP server waits for in-flight requests for at most
//! `shutdown_timeout`.
//!
//! ## Ingest on its own thread
//! Thousands of client tasks share the HTTP runtime's workers; if the feed and the engine were
//! tasks among them, a busy fan-out would delay ingestion. [`IngestRuntime`] runs them on a
//! dedicated thread with its own single-threaded Tokio runtime: the operating system
//! schedules it like any other thread, whatever the number of clients. Create the feed inside
//! it (its tasks then run there too) and pass its handle to [`Application::build_on`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use mbo_feed::Feed;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::engine::{Engine, EngineClient};
use crate::http::{router, AppState, StreamSlots};
use crate::hub::{FeedInfo, Hub};
use crate::metrics::Metrics;
use crate::storage::Storage;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Metrics could not be registered (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The database cannot be opened or its writer started.
    #[error("storage: {0}")]
    Storage(#[from] mbo_store::StoreError),
    /// The crypto venues cannot start.
    #[error("venues: {0}")]
    Venues(#[from] crate::venues::VenueError),
    /// The server failed while serving.
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// A bound, running-on-demand server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    engine: JoinHandle<()>,
    venues: Option<crate::venues::Venues>,
}

impl Application {
    /// Binds `config.bind` and starts the engine on `feed` (`description` names the source
    /// for status: a file name, a seed, a dataset), on the current runtime.
    ///
    /// Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// [`StartError::Bind`] when the address is taken or not allowed.
    pub async fn build(
        config: ServerConfig,
        feed: Feed,
        description: String,
    ) -> Result<Self, StartError> {
        Self::build_on(config, feed, description, tokio::runtime::Handle::current()).await
    }

    /// As [`Application::build`], running the engine on `engine_runtime` (an
    /// [`IngestRuntime`]'s handle).
    ///
    /// # Errors
    /// [`StartError::Bind`] when the address is taken or not allowed.
    pub async fn build_on(
        config: ServerConfig,
        feed: Feed,
        description: String,
        engine_runtime: tokio::runtime::Handle,
    ) -> Result<Self, StartError> {
        Self::build_with(config, feed, description, engine_runtime, Hooks::default()).await
    }

    /// As [`Application::build_on`], with the scale-out [`Hooks`] of an ingest or a gateway.
    ///
    /// # Errors
    /// [`StartError::Bind`] when the address is taken or not allowed.
    pub async fn build_with(
        config: ServerConfig,
        feed: Feed,
        description: String,
        engine_runtime: tokio::runtime::Handle,
        hooks: Hooks,
    ) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let metrics = Arc::new(Metrics::new()?);
        let no_mbo = feed.metadata.source == mbo_feed::SourceKind::None;
        let hub = Arc::new(Hub::new(
            FeedInfo::new(feed.metadata, description),
            feed.control,
        ));
        if no_mbo {
            // No MBO feed (crypto venues only): nothing to wait for before serving.
            hub.set_health(crate::hub::Health::Ready);
        }
        let shutdown = CancellationToken::new();
        let (recorder, storage) = match &config.storage {
            Some(storage) => {
                let (recorder, storage) = Storage::start(storage, &metrics)?;
                (Some(recorder), Some(storage))
            }
            None => (None, None),
        };
        let (engine, client): (Engine, EngineClient) = Engine::new(
            hub.clone(),
            metrics.clone(),
            feed.events,
            shutdown.clone(),
            recorder,
        );
        let venues = match &config.venues {
            Some(v) => Some(crate::venues::Venues::start(
                v,
                metrics.registry(),
                &shutdown,
            )?),
            None => None,
        };
        let engine = engine
            .with_storage(storage.clone())
            .with_epoch(hooks.epoch)
            .with_tap(hooks.tap);
        let engine = engine_runtime.spawn(engine.run());
        let state = AppState {
            hub,
            engine: client,
            metrics,
            streams: Arc::new(StreamSlots::new(config.max_streams)),
            config: Arc::new(config),
            shutdown,
            storage,
            venues: hooks
                .venue_hub
                .or_else(|| venues.as_ref().map(|v| v.hub.clone())),
            forward: hooks.forward,
        };
        Ok(Self {
            listener,
            addr,
            state,
            engine,
            venues,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Shared state (for embedding and tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The router with every route, for answering requests that did not come over TCP (an
    /// ingest answers its gateways' forwarded requests with it).
    pub fn router(&self) -> axum::Router {
        router(self.state.clone())
    }

    /// Serves until `stop` completes, then shuts down gracefully within the configured
    /// timeout.
    ///
    /// # Errors
    /// [`StartError::Serve`] when accepting connections fails.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let token = self.state.shutdown.clone();
        let timeout = self.state.config.shutdown_timeout;
        tokio::spawn({
            let token = token.clone();
            async move {
                stop.await;
                tracing::info!("shutting down");
                token.cancel();
            }
        });
        let app = router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let graceful = {
            let token = token.clone();
            // Without TCP_NODELAY, a small SSE write waits for the ACK of the previous one,
            // which the client's delayed ACK holds for up to 200 ms: a latency tail of a
            // few hundred milliseconds on a stream that is otherwise a few ms behind.
            let listener = self.listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
        };
        let result = tokio::select! {
            r = graceful => r.map_err(StartError::Serve),
            () = async { token.cancelled().await; tokio::time::sleep(timeout).await } => {
                tracing::warn!(timeout_s = timeout.as_secs_f64(), "connections still open at the shutdown timeout: closing them");
                Ok(())
            }
        };
        token.cancel();
        // The engine observes the token and flushes storage before it returns: wait for
        // that (the writer commits a batch in milliseconds, so this is not the place to
        // give up on data).
        let _ = self.engine.await;
        // Closes the venue sockets and joins their thread.
        drop(self.venues);
        result
    }
}

/// What makes a server an ingest or a gateway of a scale-out deployment (the default: a
/// single process).
#[derive(Debug, Default)]
pub struct Hooks {
    /// The engine's first epoch (an ingest continues after the epochs already published).
    pub epoch: u64,
    /// The follower of the engine's applied stream (an ingest's publisher).
    pub tap: Option<crate::tap::Tap>,
    /// Where history and replay commands go (a gateway's ingest).
    pub forward: Option<crate::http::forward::Forwarder>,
    /// Crypto books mirrored from elsewhere (a gateway's ingest), served instead of
    /// running venue connections.
    pub venue_hub: Option<Arc<crate::venues::hub::VenueHub>>,
}

/// A dedicated thread running a single-threaded Tokio runtime for the feed and the engine.
#[derive(Debug)]
pub struct IngestRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IngestRuntime {
    /// Starts the thread.
    ///
    /// # Errors
    /// When the runtime or the thread cannot be created.
    pub fn start() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mbo-ingest".into())
            .spawn(move || {
                // Runs every task spawned on the handle until told to stop.
                let _ = rt.block_on(stopped);
            })?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where to spawn the feed and the engine.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for IngestRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
