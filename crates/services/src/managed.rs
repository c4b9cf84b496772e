//! One running service behind either provider, with the controls tests and fault
//! injection use: pause/unpause, stop/start (same port, same data), restart, shutdown, and
//! waiting until the service really answers.

use std::time::{Duration, Instant};

use testcontainers::{ContainerAsync, Image};
use tokio::sync::Mutex;

use crate::probe::Probe;
use crate::processes::ProcessService;
use crate::{Provider, ServiceError};

pub(crate) enum Backend<I: Image> {
    Container(Box<ContainerAsync<I>>),
    Process(ProcessService),
}

pub(crate) struct Managed<I: Image> {
    pub service: &'static str,
    pub port: u16,
    probe: Probe,
    ready_deadline: Duration,
    provider: Provider,
    backend: Mutex<Backend<I>>,
}

impl<I: Image> Managed<I> {
    pub fn new(
        service: &'static str,
        port: u16,
        probe: Probe,
        ready_deadline: Duration,
        backend: Backend<I>,
    ) -> Self {
        Managed {
            service,
            port,
            probe,
            ready_deadline,
            provider: match backend {
                Backend::Container(_) => Provider::Containers,
                Backend::Process(_) => Provider::Processes,
            },
            backend: Mutex::new(backend),
        }
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub async fn container_id(&self) -> Option<String> {
        match &*self.backend.lock().await {
            Backend::Container(c) => Some(c.id().to_owned()),
            Backend::Process(_) => None,
        }
    }

    pub async fn pid(&self) -> Option<u32> {
        match &*self.backend.lock().await {
            Backend::Container(_) => None,
            Backend::Process(p) => p.pid(),
        }
    }

    pub async fn dir(&self) -> Option<std::path::PathBuf> {
        match &*self.backend.lock().await {
            Backend::Container(_) => None,
            Backend::Process(p) => p.dir().map(|d| d.to_path_buf()),
        }
    }

    /// Polls the protocol probe until it succeeds, the process dies, or the deadline passes.
    pub async fn wait_ready(&self, deadline: Duration) -> Result<(), ServiceError> {
        let started = Instant::now();
        let mut last;
        loop {
            {
                let mut backend = self.backend.lock().await;
                match &mut *backend {
                    Backend::Process(p) => p.check_alive()?,
                    Backend::Container(c) => {
                        if let Ok(false) = c.is_running().await {
                            return Err(ServiceError::Exited {
                                service: self.service,
                                status: format!("container {} not running", c.id()),
                                log: crate::containers::log_tail(c).await,
                            });
                        }
                    }
                }
            }
            match self.probe.once(self.port).await {
                Ok(()) => return Ok(()),
                Err(why) => last = why,
            }
            if started.elapsed() >= deadline {
                let log = match &*self.backend.lock().await {
                    Backend::Process(p) => p.log_tail(),
                    Backend::Container(c) => crate::containers::log_tail(c).await,
                };
                return Err(ServiceError::NotReady {
                    service: self.service,
                    port: self.port,
                    waited: started.elapsed(),
                    last,
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn wait_initially_ready(&self) -> Result<(), ServiceError> {
        self.wait_ready(self.ready_deadline).await
    }

    fn container_error(
        &self,
        op: &'static str,
    ) -> impl FnOnce(testcontainers::TestcontainersError) -> ServiceError {
        let service = self.service;
        move |source| ServiceError::Container {
            service,
            op,
            source: Box::new(source),
        }
    }

    /// Freezes the service: connections stay open, nothing is answered.
    pub async fn pause(&self) -> Result<(), ServiceError> {
        match &*self.backend.lock().await {
            Backend::Container(c) => c.pause().await.map_err(self.container_error("pause")),
            Backend::Process(p) => p.pause(),
        }
    }

    /// Resumes a paused service and waits until it answers.
    pub async fn unpause(&self) -> Result<(), ServiceError> {
        match &*self.backend.lock().await {
            Backend::Container(c) => c.unpause().await.map_err(self.container_error("unpause"))?,
            Backend::Process(p) => p.unpause()?,
        }
        self.wait_ready(self.ready_deadline).await
    }

    /// Stops the service cleanly; its port and data stay reserved for `start`.
    pub async fn stop(&self) -> Result<(), ServiceError> {
        match &mut *self.backend.lock().await {
            Backend::Container(c) => {
                // A paused container cannot be stopped cleanly.
                let _ = c.unpause().await;
                c.stop_with_timeout(Some(10))
                    .await
                    .map_err(self.container_error("stop"))
            }
            Backend::Process(p) => p.stop().await,
        }
    }

    /// Starts a stopped service on the same port and data, and waits until it answers.
    pub async fn start(&self) -> Result<(), ServiceError> {
        match &mut *self.backend.lock().await {
            Backend::Container(c) => c.start().await.map_err(self.container_error("start"))?,
            Backend::Process(p) => p.spawn()?,
        }
        self.wait_ready(self.ready_deadline).await
    }

    pub async fn restart(&self) -> Result<(), ServiceError> {
        self.stop().await?;
        self.start().await
    }

    /// Removes the container or kills the process, and removes its temp dir.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        let service = self.service;
        match self.backend.into_inner() {
            Backend::Container(c) => c.rm().await.map_err(|source| ServiceError::Container {
                service,
                op: "remove",
                source: Box::new(source),
            }),
            Backend::Process(p) => p.shutdown(),
        }
    }
}
