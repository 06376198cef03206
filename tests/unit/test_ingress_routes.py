"""Routes from projects, and HAProxy's configuration and runtime commands from routes (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.compose.models import (
    Healthcheck,
    Port,
    PortMode,
    Project,
    Service,
    ServiceNetwork,
)
from dockyard.ingress.haproxy_config import (
    EMPTY_ADDRESS,
    MIN_SLOTS,
    MIN_SPARES,
    Listener,
    Paths,
    backend_name,
    fresh_layout,
    needs_reload,
    render_config,
    render_crt_list,
    render_hosts_map,
    render_redirect_map,
    runtime_update,
    slot_count,
)
from dockyard.ingress.routes import (
    Check,
    Route,
    Upstream,
    check_custom_hosts,
    host_conflicts,
    hosts_table,
    project_routes,
    route_key,
    service_routes,
)
from dockyard.naming import NamingMode, service_fqdn

BYOC, PLAY = NamingMode.BYOC, NamingMode.PLAYGROUND


def project(**services: Service) -> Project:
    return Project(name="shop", working_dir="/tmp", compose_files=(), services=services)


def svc(name: str, *ports: Port, **extra: object) -> Service:
    return Service(name=name, ports=ports, **extra)  # type: ignore[arg-type]


WEB = svc("web", Port(target=8080), Port(target=9000))
DB = svc("db")
METRICS = svc("metrics", Port(target=9100, published="9100", mode=PortMode.HOST.value))


def test_byoc_routes_are_one_per_ingress_port_with_the_generated_domain() -> None:
    routes = project_routes(BYOC, "localhost", "alice", project(web=WEB, db=DB,
                                                                 metrics=METRICS))
    assert [(r.key, r.hosts, r.check) for r in routes] == [
        ("alice/shop/web/8080", ("web--8080.shop.alice.localhost", "web.shop.alice.localhost"),
         Check.HTTP),
        ("alice/shop/web/9000", ("web--9000.shop.alice.localhost",), Check.HTTP),
    ]


def test_playground_routes_use_the_username_and_the_zone() -> None:
    routes = service_routes(PLAY, "prod1a.localhost", "bob", "shop", WEB)
    assert routes[0].hosts == ("bob-web--8080.prod1a.localhost", "bob-web.prod1a.localhost")
    assert routes[1].hosts == ("bob-web--9000.prod1a.localhost",)


def test_private_services_and_host_ports_get_no_route() -> None:
    assert service_routes(BYOC, "localhost", "alice", "shop", DB) == []
    assert service_routes(BYOC, "localhost", "alice", "shop", METRICS) == []


def test_udp_ports_are_never_routes() -> None:
    udp = svc("dns", Port(target=53, protocol="udp"))
    assert service_routes(BYOC, "localhost", "alice", "shop", udp) == []


def test_domainname_and_dotted_aliases_join_the_first_port_only() -> None:
    web = svc("web", Port(target=8080), Port(target=9000), domainname="Shop.Example.com",
              networks={"default": ServiceNetwork(aliases=("www.example.com", "plain"))})
    first, second = service_routes(BYOC, "localhost", "alice", "shop", web)
    assert first.hosts == ("web--8080.shop.alice.localhost", "web.shop.alice.localhost",
                           "shop.example.com", "www.example.com")
    assert first.custom_hosts == ("shop.example.com", "www.example.com")
    assert second.hosts == ("web--9000.shop.alice.localhost",)
    assert second.custom_hosts == ()


def test_the_fqdn_ps_shows_is_a_generated_name_of_the_first_port() -> None:
    """`ps` shows `web.shop.alice.localhost`: it answers as the first ingress port does (as a
    `domainname` would), under the same wildcard as the port's domain, never as a custom name
    that would need a proof or a certificate of its own."""
    web = svc("web", Port(target=8080), Port(target=9000), domainname="shop.example.com")
    first, second = service_routes(BYOC, "localhost", "alice", "shop", web)
    fqdn = service_fqdn(BYOC, username="alice", project="shop", service="web",
                        zone="localhost")
    assert fqdn == "web.shop.alice.localhost"
    assert first.generated_hosts == ("web--8080.shop.alice.localhost", fqdn)
    assert first.custom_hosts == ("shop.example.com",)
    assert fqdn not in second.hosts
    assert hosts_table({r.key: r for r in (first, second)})[fqdn] == "alice/shop/web/8080"
    # Its upstreams and a narrowed set of custom names keep the generated names.
    one = Upstream("10.0.0.2", 8080)
    served = first.with_upstreams([one]).with_custom_hosts(())
    assert served.hosts == first.generated_hosts and served.upstreams == (one,)
    # A domainname equal to the FQDN is not a custom name (it needs no proof).
    same = svc("web", Port(target=8080), domainname=fqdn)
    (route,) = service_routes(BYOC, "localhost", "alice", "shop", same)
    assert route.hosts == ("web--8080.shop.alice.localhost", fqdn) and route.custom_hosts == ()
    # No two services' FQDNs and port domains meet, in either mode.
    api = svc("api", Port(target=80))
    for mode, zone in ((BYOC, "localhost"), (PLAY, "prod1a.localhost")):
        assert host_conflicts(project_routes(mode, zone, "alice",
                                             project(web=web, api=api))) == []


def test_a_service_with_its_own_healthcheck_gets_tcp_checks() -> None:
    checked = svc("api", Port(target=8000), healthcheck=Healthcheck(test=("CMD", "true")))
    disabled = svc("api", Port(target=8000), healthcheck=Healthcheck(disable=True))
    assert service_routes(BYOC, "localhost", "a", "p", checked)[0].check is Check.TCP
    assert service_routes(BYOC, "localhost", "a", "p", disabled)[0].check is Check.HTTP


def test_custom_domains_inside_the_zone_or_malformed_are_refused() -> None:
    p = project(
        web=svc("web", Port(target=80), domainname="bob-web--80.prod1a.localhost"),
        api=svc("api", Port(target=80), domainname="not a domain"),
        ok=svc("ok", Port(target=80), domainname="shop.example.com"),
        private=svc("private", domainname="whatever"))
    problems = check_custom_hosts(PLAY, "prod1a.localhost", p)
    assert sorted((x.service, x.host) for x in problems) == [
        ("api", "not a domain"), ("web", "bob-web--80.prod1a.localhost")]


def test_host_conflicts_name_both_routes() -> None:
    a = Route("a/p/web/80", ("x.example.com",), Check.HTTP)
    b = Route("b/q/api/80", ("y.example.com", "x.example.com"), Check.HTTP)
    assert host_conflicts([a, b]) == [("x.example.com", "a/p/web/80", "b/q/api/80")]
    assert hosts_table({a.key: a, b.key: b}) == {"x.example.com": "a/p/web/80",
                                                 "y.example.com": "b/q/api/80"}


# -- HAProxy layout ---------------------------------------------------------------------------
ONE = Upstream("10.0.0.2", 8080, "c1")
TWO = Upstream("10.0.0.3", 8080, "c2")
THREE = Upstream("10.0.0.4", 8080, "c3")
KEY = route_key("alice", "shop", "web", 8080)
ROUTE = Route(KEY, ("web--8080.shop.alice.localhost",), Check.HTTP)
PATHS = Paths(Path("/data/ingress"))


def test_slot_count_leaves_room_for_a_start_first_replacement() -> None:
    assert [slot_count(n) for n in (0, 1, 2, 3, 4, 5, 9)] == [4, 4, 4, 8, 8, 16, 32]


def test_config_holds_every_route_with_its_replicas_and_free_slots() -> None:
    layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE], [TWO])},
                          [Path("/data/tls/default.pem")])
    config = render_config(layout, PATHS, http=Listener(5), https=Listener(6))
    name = backend_name(KEY)
    assert f"backend {name}" in config
    assert "bind fd@5" in config and "bind fd@6 ssl crt-list /data/ingress/certificates.list" \
        in config
    assert "    server s1 10.0.0.2:8080 check\n" in config
    assert "    server s2 10.0.0.3:8080 check disabled\n" in config  # out of rotation
    assert f"    server s3 {EMPTY_ADDRESS}:1 check disabled\n" in config
    assert "option httpchk GET /" in config
    assert render_hosts_map(layout) == f"web--8080.shop.alice.localhost {name}\n"
    assert render_crt_list(layout) == "/data/tls/default.pem\n"
    assert "http-request return status 404" in config


def test_without_certificates_there_is_no_https_frontend() -> None:
    config = render_config(fresh_layout({KEY: ROUTE}), PATHS, http=Listener(5),
                           https=Listener(6))
    assert "frontend https" not in config


def test_tcp_checked_routes_have_no_http_check() -> None:
    route = Route(KEY, ROUTE.hosts, Check.TCP, (ONE,))
    config = render_config(fresh_layout({KEY: route}), PATHS, http=Listener(5), https=None)
    block = config.split(f"backend {backend_name(KEY)}\n")[1].split("\n\n")[0]
    assert "httpchk" not in block and "server s1 10.0.0.2:8080 check" in block


def test_https_only_hosts_are_redirected() -> None:
    layout = fresh_layout({KEY: ROUTE}, https_only=frozenset({"shop.example.com"}))
    assert render_redirect_map(layout) == "shop.example.com 1\n"


def test_replicas_coming_and_going_are_runtime_commands() -> None:
    name = backend_name(KEY)
    layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE])})
    # start-first: the new replica joins beside the old one
    both = {KEY: ROUTE.with_upstreams([ONE, TWO])}
    assert not needs_reload(layout, both, (), frozenset())
    layout, commands = runtime_update(layout, both)
    assert commands == [f"set server {name}/s2 addr 10.0.0.3 port 8080",
                        f"set server {name}/s2 state ready"]
    # the old one drains: out of rotation, still in its slot
    draining = {KEY: ROUTE.with_upstreams([TWO], [ONE])}
    layout, commands = runtime_update(layout, draining)
    assert commands == [f"set server {name}/s1 state maint"]
    # then it is gone, and its slot is free again
    done = {KEY: ROUTE.with_upstreams([TWO])}
    layout, commands = runtime_update(layout, done)
    assert commands == [f"set server {name}/s1 addr {EMPTY_ADDRESS} port 1"]
    assert layout.backends[KEY].slots[:2] == (None, TWO)
    # a resting replica (failing its check) comes back
    layout, _ = runtime_update(layout, {KEY: ROUTE.with_upstreams([], [TWO])})
    layout, commands = runtime_update(layout, {KEY: ROUTE.with_upstreams([TWO])})
    assert commands == [f"set server {name}/s2 state ready"]
    # nothing changed: nothing to say
    assert runtime_update(layout, {KEY: ROUTE.with_upstreams([TWO])})[1] == []


def test_a_replica_leaving_a_slot_that_was_serving_goes_to_maintenance_first() -> None:
    name = backend_name(KEY)
    layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE])})
    _, commands = runtime_update(layout, {KEY: ROUTE.with_upstreams([THREE])})
    assert commands == [f"set server {name}/s1 state maint",
                        f"set server {name}/s1 addr {EMPTY_ADDRESS} port 1",
                        f"set server {name}/s1 addr 10.0.0.4 port 8080",
                        f"set server {name}/s1 state ready"]


@pytest.mark.parametrize("change", ["taken host", "no spare", "shared host", "hosts", "check",
                                    "slots", "certificates"])
def test_what_the_runtime_api_cannot_change_needs_a_reload(change: str) -> None:
    layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE])})
    routes = {KEY: ROUTE.with_upstreams([ONE])}
    certificates: tuple[Path, ...] = ()
    if change == "taken host":  # a new route naming a host another route keeps serving
        other = Route("alice/shop/api/80", ROUTE.hosts, Check.HTTP)
        routes[other.key] = other
    elif change == "no spare":  # more new routes than spares of their check type
        for index in range(MIN_SPARES + 1):
            other = Route(f"alice/shop/s{index}/80", (f"s{index}.shop.alice.localhost",),
                          Check.TCP)
            routes[other.key] = other
    elif change == "shared host":  # a removed route named a host another one keeps
        both = Route("alice/shop/api/80", (*ROUTE.hosts, "api.test"), Check.HTTP, (TWO,))
        layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE]), both.key: both})
        routes = {both.key: both}
    elif change == "hosts":
        routes[KEY] = Route(KEY, ("x.example.com",), Check.HTTP, (ONE,))
    elif change == "check":
        routes[KEY] = Route(KEY, ROUTE.hosts, Check.TCP, (ONE,))
    elif change == "slots":
        many = [Upstream(f"10.0.1.{i}", 8080) for i in range(5)]
        routes[KEY] = ROUTE.with_upstreams(many)
    else:
        certificates = (Path("/x.pem"),)
    assert needs_reload(layout, routes, certificates, frozenset())


API = Route("alice/shop/api/80", ("api--80.shop.alice.localhost",), Check.HTTP)


def test_the_configuration_holds_spare_backends_of_each_check_type() -> None:
    layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE])})
    assert [s.check for s in layout.spares].count(Check.HTTP) == MIN_SPARES
    assert [s.check for s in layout.spares].count(Check.TCP) == MIN_SPARES
    config = render_config(layout, PATHS, http=Listener(5), https=None)
    spare = config.split("backend spare_tcp_1\n")[1].split("\n\n")[0]
    assert "httpchk" not in spare
    assert spare.count("server s") == MIN_SLOTS and spare.count("check disabled") == MIN_SLOTS
    assert "spare" not in render_hosts_map(layout)  # no host reaches a spare
    many = {f"k{i}": Route(f"k{i}", (f"h{i}.test",), Check.HTTP) for i in range(40)}
    assert [s.check for s in fresh_layout(many).spares].count(Check.HTTP) == 40


def test_a_new_route_takes_a_spare_through_the_runtime_api() -> None:
    layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE])})
    routes = {KEY: ROUTE.with_upstreams([ONE]), API.key: API.with_upstreams([TWO])}
    assert not needs_reload(layout, routes, (), frozenset())
    layout, commands = runtime_update(layout, routes, hosts_map="/data/ingress/hosts.map")
    claimed = layout.backends[API.key].name
    assert claimed == "spare_http_1" and claimed not in {s.name for s in layout.spares}
    assert commands == [f"set server {claimed}/s1 addr 10.0.0.3 port 8080",
                        f"set server {claimed}/s1 state ready",
                        f"add map /data/ingress/hosts.map api--80.shop.alice.localhost "
                        f"{claimed}"]  # the host joins once its replica is in its slot
    assert f"api--80.shop.alice.localhost {claimed}\n" in render_hosts_map(layout)
    config = render_config(layout, PATHS, http=Listener(5), https=None)
    assert f"backend {claimed}\n" in config and "backend spare_http_2\n" in config


def test_a_removed_route_leaves_the_map_and_becomes_a_spare() -> None:
    layout = fresh_layout({KEY: ROUTE.with_upstreams([ONE]), API.key: API.with_upstreams([TWO])})
    gone = layout.backends[API.key].name
    routes = {KEY: ROUTE.with_upstreams([ONE])}
    assert not needs_reload(layout, routes, (), frozenset())
    layout, commands = runtime_update(layout, routes, hosts_map="hosts.map")
    assert commands == ["del map hosts.map api--80.shop.alice.localhost",
                        f"set server {gone}/s1 state maint",
                        f"set server {gone}/s1 addr {EMPTY_ADDRESS} port 1"]
    assert API.key not in layout.backends and gone in {s.name for s in layout.spares}
    assert "api--80" not in render_hosts_map(layout)
    # ... and a later route may take it: its slots are empty again
    again = {**routes, "alice/shop/x/80": Route("alice/shop/x/80", ("x.test",), Check.HTTP,
                                                (THREE,))}
    spares = [s.name for s in layout.spares if s.check is Check.HTTP]
    assert spares[-1] == gone
    layout, _ = runtime_update(layout, again)
    assert layout.backends["alice/shop/x/80"].name == spares[0]


def test_control_sockets_move_to_a_short_path_when_the_directory_is_deep() -> None:
    assert Paths(Path("/data/ingress")).admin_socket == Path("/data/ingress/admin.sock")
    deep = Paths(Path("/tmp/" + "x" * 120 + "/ingress"))
    assert len(str(deep.master_socket)) <= 97 and len(str(deep.admin_socket)) <= 97
    assert deep.socket_directory == Paths(Path("/tmp/" + "x" * 120 + "/ingress")).socket_directory
    assert deep.socket_directory != Paths(Path("/tmp/" + "y" * 120 + "/ingress")).socket_directory
