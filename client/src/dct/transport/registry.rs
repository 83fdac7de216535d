//! A Docker registry's v2 API, only as far as signing needs it: the digest and size
//! of the manifest a tag points at, as `docker push` records them in Notary.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use sha2::{Digest, Sha256};

use super::http::{Http, Response};
use super::names::{check_path_name, check_reference, join};
use super::{ServerConfig, TransportError};

/// Largest manifest read.
pub const MANIFEST_LIMIT: usize = 4 << 20;

/// The manifest types asked for and accepted: OCI and Docker v2 manifests and
/// indexes (manifest lists). Docker's schema 1 is refused: its digest is not the
/// hash of the bytes served.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// What a tag points at: what Notary signs as the target's hash and length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `sha256:<hex>` of the exact bytes the registry served.
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// A registry. Clones share the connection pool and the token cache.
#[derive(Clone)]
pub struct Registry {
    http: Http,
}

impl Registry {
    /// `config.url` is `https://`, or plain `http://` only for a registry on this
    /// machine (`localhost`, `127.0.0.1`, `::1`), as Docker allows for insecure
    /// local registries.
    pub fn new(config: ServerConfig) -> Result<Registry, TransportError> {
        Ok(Registry {
            http: Http::new(config, true)?,
        })
    }

    pub fn url(&self) -> &url::Url {
        self.http.base()
    }

    /// `GET /v2/<repository>/manifests/<tag>` (a tag, or a `sha256:` digest). The
    /// digest is computed from the body; a `Docker-Content-Digest` header that
    /// disagrees is refused.
    pub async fn manifest(&self, repository: &str, tag: &str) -> Result<Manifest, TransportError> {
        check_path_name("repository", repository)?;
        check_reference(tag)?;
        let url = join(self.url(), &format!("/v2/{repository}/manifests/{tag}"));
        let accept = MANIFEST_MEDIA_TYPES.join(", ");
        let build = || {
            self.http
                .request(Method::GET, url.clone())
                .header(ACCEPT, accept.as_str())
        };
        let response = self
            .http
            .send(
                Method::GET,
                &url,
                &format!("repository:{repository}:pull"),
                MANIFEST_LIMIT,
                &build,
            )
            .await?;
        manifest_from_response(&url, &response)
    }
}

/// Checks a manifest response and describes it: a success, of an accepted media
/// type, whose `Docker-Content-Digest` (if sent) is the SHA-256 of its bytes.
fn manifest_from_response(url: &url::Url, response: &Response) -> Result<Manifest, TransportError> {
    if !response.status.is_success() {
        return Err(Http::error_status(&Method::GET, url, response));
    }
    let media_type = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(TransportError::ManifestType {
            url: url.to_string(),
            media_type,
        });
    }
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&response.body)));
    if let Some(header) = response.headers.get("docker-content-digest") {
        let header = String::from_utf8_lossy(header.as_bytes()).trim().to_owned();
        if header != digest {
            return Err(TransportError::DigestMismatch {
                url: url.to_string(),
                header,
                computed: digest,
            });
        }
    }
    Ok(Manifest {
        digest,
        size: response.body.len() as u64,
        media_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use reqwest::StatusCode;

    const BODY: &[u8] =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;

    fn response(status: StatusCode, media_type: &str, digest: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).expect("header"),
        );
        if let Some(digest) = digest {
            headers.insert(
                "docker-content-digest",
                HeaderValue::from_str(digest).expect("header"),
            );
        }
        Response {
            status,
            headers,
            body: BODY.to_vec(),
        }
    }

    fn url() -> url::Url {
        url::Url::parse("http://localhost:5000/v2/acme/app/manifests/v1").expect("url")
    }

    fn body_digest() -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(BODY)))
    }

    #[test]
    fn digest_and_size_are_of_the_exact_bytes() {
        let digest = body_digest();
        let manifest = manifest_from_response(
            &url(),
            &response(StatusCode::OK, MANIFEST_MEDIA_TYPES[0], Some(&digest)),
        )
        .expect("accepted");
        assert_eq!(
            manifest,
            Manifest {
                digest: digest.clone(),
                size: BODY.len() as u64,
                media_type: MANIFEST_MEDIA_TYPES[0].into(),
            }
        );
        // Without the header the computed digest stands.
        let manifest = manifest_from_response(
            &url(),
            &response(StatusCode::OK, MANIFEST_MEDIA_TYPES[2], None),
        )
        .expect("accepted");
        assert_eq!(manifest.digest, digest);
    }

    #[test]
    fn a_disagreeing_digest_header_is_refused() {
        let wrong = format!("sha256:{}", "0".repeat(64));
        let error = manifest_from_response(
            &url(),
            &response(StatusCode::OK, MANIFEST_MEDIA_TYPES[3], Some(&wrong)),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            error.contains(&wrong) && error.contains(&body_digest()),
            "{error}"
        );
    }

    #[test]
    fn schema1_and_errors_are_refused() {
        let error = manifest_from_response(
            &url(),
            &response(
                StatusCode::OK,
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                None,
            ),
        )
        .expect_err("schema 1 refused")
        .to_string();
        assert!(error.contains("v1+prettyjws"), "{error}");
        let error = manifest_from_response(
            &url(),
            &response(StatusCode::NOT_FOUND, MANIFEST_MEDIA_TYPES[0], None),
        )
        .expect_err("404 refused")
        .to_string();
        assert!(error.contains("404"), "{error}");
    }

    #[test]
    fn accept_names_every_type() {
        let accept = MANIFEST_MEDIA_TYPES.join(", ");
        for media_type in [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ] {
            assert!(accept.contains(media_type), "{media_type}");
        }
    }
}
