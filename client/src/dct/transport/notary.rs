//! notary-server's HTTP API (`/v2/<gun>/_trust/tuf/`), as the `notary` client
//! speaks it: metadata by role, the server-managed keys, and the atomic multipart
//! publish. What is fetched here is unverified bytes; verifying them against the
//! pinned root is the caller's job.

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::http::{Http, Response};
use super::names::{check_path_name, join};
use super::{ServerConfig, TransportError};

/// Largest metadata file read (a role with many targets or delegations).
pub const METADATA_LIMIT: usize = 16 << 20;
/// Largest key answer read.
pub const KEY_LIMIT: usize = 4 << 20;

/// A Notary server. Clones share the connection pool and the token cache.
#[derive(Clone)]
pub struct NotaryServer {
    http: Http,
}

impl NotaryServer {
    /// `config.url` must be `https://`. No request is made yet.
    pub fn new(config: ServerConfig) -> Result<NotaryServer, TransportError> {
        Ok(NotaryServer {
            http: Http::new(config, false)?,
        })
    }

    pub fn url(&self) -> &url::Url {
        self.http.base()
    }

    /// `GET /v2/<gun>/_trust/tuf/<role>.json` (at most [`METADATA_LIMIT`] bytes);
    /// `Ok(None)` when the server has none (404). `role` may be a delegation
    /// (`targets/releases`).
    pub async fn metadata(&self, gun: &str, role: &str) -> Result<Option<Vec<u8>>, TransportError> {
        let url = self.role_url(gun, role, "json")?;
        let response = self
            .send(Method::GET, &url, &pull(gun), METADATA_LIMIT, None)
            .await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        success(Method::GET, &url, response).map(Some)
    }

    /// `GET /v2/<gun>/_trust/tuf/<role>.key`: the public key JSON of the key the
    /// server keeps for `role` (`timestamp` or `snapshot`), created on first ask.
    pub async fn server_key(&self, gun: &str, role: &str) -> Result<Vec<u8>, TransportError> {
        let url = self.role_url(gun, role, "key")?;
        let response = self
            .send(Method::GET, &url, &push_pull(gun), KEY_LIMIT, None)
            .await?;
        success(Method::GET, &url, response)
    }

    /// `POST /v2/<gun>/_trust/tuf/<role>.key`: the server makes a new key for `role`
    /// and returns its public key JSON.
    pub async fn rotate_server_key(
        &self,
        gun: &str,
        role: &str,
    ) -> Result<Vec<u8>, TransportError> {
        let url = self.role_url(gun, role, "key")?;
        let response = self
            .send(Method::POST, &url, &everything(gun), KEY_LIMIT, None)
            .await?;
        success(Method::POST, &url, response)
    }

    /// `POST /v2/<gun>/_trust/tuf/` with one multipart part per `(role, bytes)`, as
    /// the notary client sends them (form field `files`, file name = role name,
    /// unescaped): the server validates and stores the whole set atomically, or
    /// nothing.
    pub async fn publish(
        &self,
        gun: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), TransportError> {
        check_path_name("GUN", gun)?;
        for (role, _) in files {
            check_path_name("role", role)?;
        }
        let url = join(self.url(), &format!("/v2/{gun}/_trust/tuf/"));
        let response = self
            .send(Method::POST, &url, &push_pull(gun), KEY_LIMIT, Some(files))
            .await?;
        success(Method::POST, &url, response).map(drop)
    }

    fn role_url(&self, gun: &str, role: &str, extension: &str) -> Result<url::Url, TransportError> {
        check_path_name("GUN", gun)?;
        check_path_name("role", role)?;
        Ok(join(
            self.url(),
            &format!("/v2/{gun}/_trust/tuf/{role}.{extension}"),
        ))
    }

    async fn send(
        &self,
        method: Method,
        url: &url::Url,
        scope: &str,
        limit: usize,
        files: Option<&[(String, Vec<u8>)]>,
    ) -> Result<Response, TransportError> {
        let build = || {
            let request = self.http.request(method.clone(), url.clone());
            match files {
                Some(files) => request.multipart(multipart(files)),
                None => request,
            }
        };
        self.http
            .send(method.clone(), url, scope, limit, &build)
            .await
    }
}

/// The notary client's form: Go's `CreateFormFile("files", role)`, i.e. each part
/// `Content-Disposition: form-data; name="files"; filename="<role>"` and
/// `Content-Type: application/octet-stream`. Role names are sent unescaped
/// (`targets/releases`): the server reads the role from the file name.
fn multipart(files: &[(String, Vec<u8>)]) -> reqwest::multipart::Form {
    files
        .iter()
        .fold(reqwest::multipart::Form::new(), |form, (role, bytes)| {
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            let part = reqwest::multipart::Part::bytes(bytes.clone())
                .file_name(role.clone())
                .headers(headers);
            form.part("files", part)
        })
}

fn success(method: Method, url: &url::Url, response: Response) -> Result<Vec<u8>, TransportError> {
    if response.status.is_success() {
        Ok(response.body)
    } else {
        Err(Http::error_status(&method, url, &response))
    }
}

/// The token scopes notary-server's routes require (server/server.go).
fn pull(gun: &str) -> String {
    format!("repository:{gun}:pull")
}
fn push_pull(gun: &str) -> String {
    format!("repository:{gun}:pull,push")
}
fn everything(gun: &str) -> String {
    format!("repository:{gun}:*")
}
