//! Lets the fault timeline act on the services crate's Postgres and Redis handles.

use futures::future::BoxFuture;
use futures::FutureExt;
use poolproof_services::{Postgres, Redis, ServiceError};

use super::timeline::ServiceControl;

fn msg(r: Result<(), ServiceError>) -> Result<(), String> {
    r.map_err(|e| e.to_string())
}

macro_rules! control {
    ($t:ty) => {
        impl ServiceControl for $t {
            fn pause(&self) -> BoxFuture<'_, Result<(), String>> {
                async move { msg(<$t>::pause(self).await) }.boxed()
            }
            fn unpause(&self) -> BoxFuture<'_, Result<(), String>> {
                async move { msg(<$t>::unpause(self).await) }.boxed()
            }
            fn stop(&self) -> BoxFuture<'_, Result<(), String>> {
                async move { msg(<$t>::stop(self).await) }.boxed()
            }
            fn start(&self) -> BoxFuture<'_, Result<(), String>> {
                async move { msg(<$t>::start(self).await) }.boxed()
            }
            fn restart(&self) -> BoxFuture<'_, Result<(), String>> {
                async move { msg(<$t>::restart(self).await) }.boxed()
            }
        }
    };
}

control!(Postgres);
control!(Redis);
