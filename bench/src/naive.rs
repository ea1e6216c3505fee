//! The naive floor: a hand-written tower layer making one plain OpenTelemetry SDK span per
//! RPC, with 3 attributes, started when the request arrives and ended when the response
//! headers are ready. No events, no propagation, no status: the least a tracing layer does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, SpanKind, Tracer};
use opentelemetry_sdk::trace::{SdkTracer, Span as SdkSpan};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

#[derive(Clone, Debug)]
pub struct NaiveLayer {
    tracer: SdkTracer,
    kind: SpanKind,
}

impl NaiveLayer {
    pub fn new(tracer: SdkTracer, kind: SpanKind) -> Self {
        NaiveLayer { tracer, kind }
    }
}

impl<S> Layer<S> for NaiveLayer {
    type Service = NaiveService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        NaiveService {
            inner,
            tracer: self.tracer.clone(),
            kind: self.kind.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NaiveService<S> {
    inner: S,
    tracer: SdkTracer,
    kind: SpanKind,
}

impl<S, B, RB> Service<Request<B>> for NaiveService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = NaiveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path();
        let span = self
            .tracer
            .span_builder(path.trim_start_matches('/').to_owned())
            .with_kind(self.kind.clone())
            .with_attributes([
                KeyValue::new("rpc.system.name", "grpc"),
                KeyValue::new("rpc.method", path.to_owned()),
                KeyValue::new("server.port", 50051),
            ])
            .start(&self.tracer);
        NaiveFuture {
            inner: self.inner.call(req),
            span: Some(span),
        }
    }
}

pin_project! {
    pub struct NaiveFuture<F> {
        #[pin]
        inner: F,
        span: Option<SdkSpan>,
    }
}

impl<F, T, E> Future for NaiveFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = ready!(this.inner.poll(cx));
        if let Some(mut span) = this.span.take() {
            span.end();
        }
        Poll::Ready(out)
    }
}
