//! Trussed backend dispatch: core + trussed-auth backend + trussed-staging
//! backend (chunked, hpke, wrap-key-to-file) — the extensions that
//! `piv_authenticator::Client` requires — plus the P-256 import
//! ([`crate::import`]): a P-256 key generation while an imported scalar is
//! pending stores that scalar instead.

use trussed::{
    backend::{Backend as _, BackendId},
    platform::Platform,
    serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl as _},
    service::ServiceResources,
    types::Context,
};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::{
    api::{reply, request, Reply, Request},
    types::{KeySerialization, Location, Mechanism},
    Error,
};

use crate::import::Injection;
use trussed_hpke::HpkeExtension;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

pub enum Backend {
    Auth,
    Staging,
}

pub enum Extension {
    Auth,
    Chunked,
    Hpke,
    WrapKeyToFile,
}

impl From<Extension> for u8 {
    fn from(e: Extension) -> u8 {
        match e {
            Extension::Auth => 0,
            Extension::Chunked => 1,
            Extension::Hpke => 2,
            Extension::WrapKeyToFile => 3,
        }
    }
}

impl TryFrom<u8> for Extension {
    type Error = Error;
    fn try_from(id: u8) -> Result<Self, Error> {
        Ok(match id {
            0 => Extension::Auth,
            1 => Extension::Chunked,
            2 => Extension::Hpke,
            3 => Extension::WrapKeyToFile,
            _ => return Err(Error::InternalError),
        })
    }
}

/// Backends in the order the service tries them.
pub const BACKENDS: &[BackendId<Backend>] = &[
    BackendId::Custom(Backend::Auth),
    BackendId::Custom(Backend::Staging),
    BackendId::Core,
];

pub struct Dispatch {
    auth: AuthBackend,
    staging: StagingBackend,
    injection: Injection,
}

impl Dispatch {
    pub fn new(injection: Injection) -> Self {
        Self {
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
            staging: StagingBackend::default(),
            injection,
        }
    }

    /// A P-256 key generation while an import is pending: the core stores the
    /// imported scalar (`UnsafeInjectKey`) and the generation gets its key ID.
    fn inject<P: Platform>(
        &mut self,
        request: &Request,
        ctx: &mut Context<DispatchContext>,
        resources: &mut ServiceResources<P>,
    ) -> Option<Result<Reply, Error>> {
        let Request::GenerateKey(generate) = request else {
            return None;
        };
        if generate.mechanism != Mechanism::P256 {
            return None;
        }
        let scalar = self.injection.take()?;
        let inject = Request::UnsafeInjectKey(request::UnsafeInjectKey {
            mechanism: Mechanism::P256,
            raw_key: match scalar.as_slice().try_into() {
                Ok(raw_key) => raw_key,
                Err(_) => return Some(Err(Error::InvalidSerializedKey)),
            },
            attributes: generate.attributes.clone(),
            format: KeySerialization::Raw,
        });
        Some(match resources.reply_to(&mut ctx.core, &inject) {
            Ok(Reply::UnsafeInjectKey(injected)) => {
                log::info!("P-256 key imported (in place of a generated one)");
                Ok(Reply::GenerateKey(reply::GenerateKey { key: injected.key }))
            }
            Ok(_) => Err(Error::InternalError),
            Err(error) => Err(error),
        })
    }
}

#[derive(Default)]
pub struct DispatchContext {
    auth: AuthContext,
    staging: StagingContext,
}

impl ExtensionDispatch for Dispatch {
    type BackendId = Backend;
    type Context = DispatchContext;
    type ExtensionId = Extension;

    fn core_request<P: Platform>(
        &mut self,
        backend: &Backend,
        ctx: &mut Context<DispatchContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        // The first backend asked: an import is served before anything else.
        if let Some(injected) = self.inject(request, ctx, resources) {
            return injected;
        }
        match backend {
            Backend::Auth => {
                self.auth
                    .request(&mut ctx.core, &mut ctx.backends.auth, request, resources)
            }
            Backend::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &Backend,
        extension: &Extension,
        ctx: &mut Context<DispatchContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        match (backend, extension) {
            (Backend::Auth, Extension::Auth) => self.auth.extension_request_serialized(
                core,
                &mut ctx.backends.auth,
                request,
                resources,
            ),
            (Backend::Staging, Extension::Chunked) => {
                trussed::serde_extensions::ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (Backend::Staging, Extension::Hpke) => {
                trussed::serde_extensions::ExtensionImpl::<HpkeExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (Backend::Staging, Extension::WrapKeyToFile) => {
                trussed::serde_extensions::ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

impl ExtensionId<AuthExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Auth;
}
impl ExtensionId<ChunkedExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Chunked;
}
impl ExtensionId<HpkeExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Hpke;
}
impl ExtensionId<WrapKeyToFileExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::WrapKeyToFile;
}
