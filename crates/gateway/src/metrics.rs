//! The gateway's metrics (see docs/observability.md for the Prometheus names): request count and
//! latency of every call at the edge ([`rpc_layer`], by service, method and error code) and the
//! rebalances of managed group subscriptions ([`observe_rebalances`]).

use std::sync::Arc;

use vltava_common::metrics::RpcMetricsLayer;

use crate::client_api::GatewayApi;

/// Instrumentation scope, and prefix of every gateway metric name.
pub const SCOPE: &str = "vltava.gateway";

/// Request count and latency of every gRPC call the gateway answers.
pub fn rpc_layer() -> RpcMetricsLayer {
    RpcMetricsLayer::global(SCOPE)
}

/// Publishes the rebalance count of `api`'s managed group subscriptions; returns `api`.
pub fn observed(api: GatewayApi) -> GatewayApi {
    let membership = Arc::downgrade(api.membership());
    observe_rebalances(move || membership.upgrade().map(|m| m.rebalances()));
    api
}

/// Publishes `vltava.gateway.rebalances`, a counter read at collection time from `rebalances`
/// (the total so far, `None` once its source is gone), as [`observed`] does with the managed
/// subscriptions' `Membership`.
pub fn observe_rebalances(rebalances: impl Fn() -> Option<u64> + Send + Sync + 'static) {
    opentelemetry::global::meter(SCOPE)
        .u64_observable_counter("vltava.gateway.rebalances")
        .with_unit("{rebalance}")
        .with_description("New assignments received by the managed group subscriptions of this gateway")
        .with_callback(move |o| {
            if let Some(total) = rebalances() {
                o.observe(total, &[]);
            }
        })
        .build();
}
