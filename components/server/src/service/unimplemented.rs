//! Naming the method in UNIMPLEMENTED answers. A gRPC method this store does not declare is
//! answered by the generated service with a bare UNIMPLEMENTED status and no message; a user
//! then cannot tell which call is missing. [`NameUnimplemented`] wraps a service and fills in
//! the message: "`<Method>` is not supported by this store".

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

/// A gRPC service whose UNIMPLEMENTED answers without a message get one naming the method.
#[derive(Clone, Debug)]
pub struct NameUnimplemented<S> {
    inner: S,
}

impl<S> NameUnimplemented<S> {
    pub fn new(inner: S) -> Self {
        NameUnimplemented { inner }
    }
}

impl<S: NamedService> NamedService for NameUnimplemented<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for NameUnimplemented<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if is_bare_unimplemented(&response) {
                let message = format!("{method} is not supported by this store");
                return Ok(Status::unimplemented(message).into_http());
            }
            Ok(response)
        })
    }
}

/// An UNIMPLEMENTED status in the headers (a trailers-only answer) without a message.
fn is_bare_unimplemented(response: &http::Response<Body>) -> bool {
    let headers = response.headers();
    let unimplemented = (Code::Unimplemented as i32).to_string();
    headers.get("grpc-status").and_then(|v| v.to_str().ok()) == Some(unimplemented.as_str())
        && headers.get("grpc-message").is_none_or(|m| m.is_empty())
}

#[cfg(test)]
mod tests {
    use std::future::{ready, Ready};

    use super::*;

    /// Answers every call as the generated code answers an unknown method.
    #[derive(Clone)]
    struct Unknown;

    impl Service<http::Request<Body>> for Unknown {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            let mut response = http::Response::new(Body::default());
            response
                .headers_mut()
                .insert("grpc-status", "12".parse().unwrap());
            ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn unknown_methods_are_named() {
        let mut service = NameUnimplemented::new(Unknown);
        let request = http::Request::builder()
            .uri("http://store/tikvpb.Tikv/Coprocessor")
            .body(Body::default())
            .unwrap();
        let response = service.call(request).await.unwrap();
        let status = Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(
            status.message(),
            "Coprocessor is not supported by this store"
        );
    }
}
