#!/usr/bin/env python3
"""xdsgen: the xDS resources of bench/xds.sh, Istio-shaped, one JSON resource with "@type" a
line (bench/tools/xdsraw turns them into the raw form build/xds/server/skiff-xds-server serves).

  xdsgen.py clusters OUT N EPS [--variant K] [--bare-endpoints] [--no-tls]
      N EDS clusters "outbound|9080|v1|svc-<i>.default.svc.cluster.local" as istiod sends them
      (connect_timeout, LEAST_REQUEST, circuit_breakers thresholds, istio metadata, the
      istio.metadata_exchange filter, transport_socket_matches tlsMode-istio (SDS) and
      tlsMode-disabled; --no-tls: only the latter), and their ClusterLoadAssignments: EPS
      endpoints each, all distinct loopback addresses (127.0.0.1 ports 10000-59999, then
      127.0.0.2, ...; nothing listens there), with Istio's locality and endpoint metadata
      (workload, tlsMode), health status and weights unless --bare-endpoints. --variant 1
      changes every cluster (connect_timeout 10s -> 11s) and every assignment (weights 1 -> 2):
      the two variants alternate in the churn run.
  xdsgen.py listeners OUT N PORT0 CLUSTERS
      N listeners "0.0.0.0_<port>" (bind_to_port false, traffic_direction OUTBOUND, an HCM
      with rds to its own route configuration "<port>") and N RouteConfigurations "<port>",
      each one virtual host to cluster i % CLUSTERS (istiod's shape: domains host, host:port,
      retry_policy, timeout 0s, max_grpc_timeout, decorator).
  xdsgen.py real OUT LISTEN_PORT STATE PORT_A PORT_B
      What traffic goes through: the listener "bench_real" bound on 127.0.0.1:LISTEN_PORT, two
      EDS clusters outbound|80|v1|real... and outbound|80|v2|real..., routes weighted between
      them (Istio's canary shape), nginx "a" on PORT_A and "b" on PORT_B. STATE 0: the route
      "bench-real" sends everything to v1 (EDS service real-v1-a -> "a"); 1: v1's EDS service
      becomes real-v1-b (-> "b"), a CDS change whose endpoints come with the new EDS
      subscription; 2: the listener's rds names "bench-real-2" (everything to v2 -> "a"), an LDS
      change whose route comes with the new RDS subscription.
  xdsgen.py empty OUT
"""
import json
import sys

C = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
E = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
L = "type.googleapis.com/envoy.config.listener.v3.Listener"
R = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
ADS = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
MAXU32 = 4294967295


def sds(name):
    return {"name": name, "sds_config": {"api_config_source": {
        "api_type": "GRPC", "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}],
        "set_node_on_first_message_only": True, "transport_api_version": "V3"},
        "initial_fetch_timeout": "0s", "resource_api_version": "V3"}}


def svc(i):
    return f"svc-{i}.default.svc.cluster.local"


def cname(i, port=9080, subset="v1"):
    return f"outbound|{port}|{subset}|{svc(i)}"


def cluster(name, host, port, subset, variant, tls):
    c = {"@type": C, "name": name, "type": "EDS",
         "eds_cluster_config": {"eds_config": ADS, "service_name": name},
         "connect_timeout": "11s" if variant else "10s",
         "lb_policy": "LEAST_REQUEST",
         "circuit_breakers": {"thresholds": [{"max_connections": MAXU32, "max_pending_requests": MAXU32,
                                              "max_requests": MAXU32, "max_retries": MAXU32,
                                              "track_remaining": True}]},
         "metadata": {"filter_metadata": {"istio": {
             "default_original_port": port,
             "services": [{"host": host, "namespace": "default", "name": host.split(".")[0]}],
             "config": f"/apis/networking.istio.io/v1alpha3/namespaces/default/destination-rule/{host.split('.')[0]}",
             "subset": subset}}},
         "filters": [{"name": "istio.metadata_exchange", "typed_config": {
             "@type": "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange",
             "protocol": "istio-peer-exchange"}}]}
    raw = {"name": "tlsMode-disabled", "match": {}, "transport_socket": {
        "name": "envoy.transport_sockets.raw_buffer",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}
    if tls:
        c["transport_socket_matches"] = [{"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": {
            "name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {
                    "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
                    "alpn_protocols": ["istio-peer-exchange", "istio"],
                    "tls_certificate_sds_secret_configs": [sds("default")],
                    "combined_validation_context": {
                        "default_validation_context": {"match_subject_alt_names": [
                            {"exact": f"spiffe://cluster.local/ns/default/sa/{host.split('.')[0]}"}]},
                        "validation_context_sds_secret_config": sds("ROOTCA")}},
                "sni": f"outbound_.{port}_.{subset}_.{host}"}}}, raw]
    else:
        c["transport_socket_matches"] = [raw]
    return c


def addr(g):
    """The g-th endpoint address: 127.0.0.1 with ports 10000-59999, then 127.0.0.2, ...: all
    distinct (100k endpoints do not fit in one address's ports), all loopback."""
    return f"127.0.0.{1 + g // 50000}", 10000 + g % 50000


def endpoint(g, weight, name, bare):
    ip, port = addr(g)
    e = {"endpoint": {"address": {"socket_address": {"address": ip, "port_value": port}}}}
    if not bare:
        e.update({"health_status": "HEALTHY", "load_balancing_weight": weight, "metadata": {"filter_metadata": {
            "envoy.transport_socket_match": {"tlsMode": "istio"},
            "istio": {"workload": f"{name};default;{name};v1;Kubernetes"}}}})
    elif weight != 1:
        e["load_balancing_weight"] = weight
    return e


def cla(name, gs, weight, workload, bare):
    group = {"lb_endpoints": [endpoint(g, weight, workload, bare) for g in gs]}
    if not bare:
        group["locality"] = {"region": "bench", "zone": "bench-a"}
        group["load_balancing_weight"] = weight * len(gs)
    return {"@type": E, "cluster_name": name, "endpoints": [group]}


def templated(make, n):
    """make(i) for i < n as JSON lines, fast: one JSON text made with a marker index and the
    marker replaced (make(i) differs from make(MARK) only in the decimal index)."""
    mark = 987654321
    t = json.dumps(make(mark), separators=(",", ":"))
    assert str(mark) in t
    return [t.replace(str(mark), str(i)) for i in range(n)]


def clusters(n, eps, variant, bare, tls):
    out = templated(lambda i: cluster(cname(i), svc(i), 9080, "v1", variant, tls), n)
    for i in range(n):
        out.append(json.dumps(cla(cname(i), range(i * eps, (i + 1) * eps), 2 if variant else 1,
                                  f"svc-{i}-v1", bare), separators=(",", ":")))
    return out


def listeners(n, port0, nclusters):
    out = []
    for i in range(n):
        port = port0 + i
        out.append({"@type": L, "name": f"0.0.0.0_{port}",
                    "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
                    "bind_to_port": False, "traffic_direction": "OUTBOUND",
                    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                    "typed_config": {
                        "@type": HCM, "stat_prefix": f"outbound_0.0.0.0_{port}",
                        "rds": {"config_source": ADS, "route_config_name": str(port)},
                        "use_remote_address": False, "normalize_path": True,
                        "http_filters": [ROUTER]}}]}]})
    for i in range(n):
        port = port0 + i
        host = svc(i % nclusters)
        out.append({"@type": R, "name": str(port), "validate_clusters": False, "virtual_hosts": [{
            "name": f"{host}:{port}", "domains": [host, f"{host}:{port}", host.split(".")[0],
                                                 f"{host.split('.')[0]}:{port}"],
            "routes": [{"name": "default", "match": {"prefix": "/"}, "route": {
                "cluster": cname(i % nclusters), "timeout": "0s", "max_grpc_timeout": "0s",
                "retry_policy": {"retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                                 "num_retries": 2, "host_selection_retry_max_attempts": "5",
                                 "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}],
                                 "retriable_status_codes": [503]}},
                "decorator": {"operation": f"{host}:{port}/*"}}]}]})
    return [json.dumps(r, separators=(",", ":")) for r in out]


def real(lport, state, pa, pb):
    """state 0: route "bench-real" -> v1 (service real-v1-a: nginx "a"); 1: v1's EDS service
    is real-v1-b (nginx "b"): a CDS change; 2: the listener's route is "bench-real-2" -> v2
    (real-v2: nginx "a"): an LDS change. Every assignment and route is served in every state."""
    host = "real.bench.svc.cluster.local"
    v1, v2 = f"outbound|80|v1|{host}", f"outbound|80|v2|{host}"
    c1 = cluster(v1, host, 80, "v1", 0, False)
    c1["eds_cluster_config"]["service_name"] = "real-v1-b" if state >= 1 else "real-v1-a"
    c2 = cluster(v2, host, 80, "v2", 0, False)
    c2["eds_cluster_config"]["service_name"] = "real-v2"
    res = [
        {"@type": L, "name": "bench_real",
         "address": {"socket_address": {"address": "127.0.0.1", "port_value": lport}},
         "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
             "@type": HCM, "stat_prefix": "bench_real",
             "rds": {"config_source": ADS, "route_config_name": "bench-real-2" if state == 2 else "bench-real"},
             "http_filters": [ROUTER]}}]}]},
        c1, c2]
    for name, w1 in (("bench-real", 100), ("bench-real-2", 0)):
        res.append({"@type": R, "name": name, "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"timeout": "0s", "weighted_clusters": {"clusters": [
                {"name": v1, "weight": w1}, {"name": v2, "weight": 100 - w1}]}}}]}]})
    for name, port in (("real-v1-a", pa), ("real-v1-b", pb), ("real-v2", pa)):
        res.append({"@type": E, "cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]})
    return [json.dumps(r, separators=(",", ":")) for r in res]


def main(a):
    if len(a) < 2:
        sys.exit(__doc__)
    kind, out, rest = a[0], a[1], a[2:]
    flags = {x for x in rest if x in ("--bare-endpoints", "--no-tls")}
    rest = [x for x in rest if x not in flags]
    variant = 0
    if "--variant" in rest:
        k = rest.index("--variant")
        variant = int(rest[k + 1])
        del rest[k:k + 2]
    nums = [int(x) for x in rest]
    if kind == "clusters" and len(nums) == 2:
        lines = clusters(nums[0], nums[1], variant, "--bare-endpoints" in flags, "--no-tls" not in flags)
    elif kind == "listeners" and len(nums) == 3:
        lines = listeners(*nums)
    elif kind == "real" and len(nums) == 4:
        lines = real(*nums)
    elif kind == "empty" and not nums:
        lines = []
    else:
        sys.exit(__doc__)
    with open(out, "w") as f:
        f.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main(sys.argv[1:])
