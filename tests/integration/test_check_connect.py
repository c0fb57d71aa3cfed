"""`tidegate check --connect` (issue: fleets): every broker of mqtt.uri tried
once, with the cause of a failure in words a user can act on, each produced
by a real Mosquitto (or the lack of one) configured for it."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tidegate_testkit import run_cli
from tidegate_testkit.core import free_port, pending_connections
from test_security import PASSWORD, USER, make_ca, make_leaf, openssl, password_broker, pki  # noqa: F401


def write_config(tmp_path: Path, uris, **mqtt) -> Path:
    cfg = tmp_path / "cfg.yaml"
    lines = [f"gateway: {{ id: chk, data_dir: {tmp_path / 'data'} }}", "mqtt:",
             f"  uri: [{', '.join(uris)}]"]
    for k, v in mqtt.items():
        if isinstance(v, dict):
            lines.append(f"  {k}:")
            lines += [f"    {kk}: {vv}" for kk, vv in v.items()]
        else:
            lines.append(f"  {k}: {v}")
    lines.append("sensors: []")
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def check(tidegate_bin, cfg: Path):
    r = run_cli(tidegate_bin, "check", "--connect", "-c", str(cfg), timeout=60)
    return r, dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)


def tls_mosquitto(mosquitto_factory, crt: Path, key: Path, ca: Path, require_cert=False):
    broker = mosquitto_factory()
    c = broker.file("server.crt", crt.read_bytes())
    k = broker.file("server.key", key.read_bytes(), mode=0o600)
    a = broker.file("ca.crt", ca.read_bytes())
    broker.listener += [f"cafile {a}", f"certfile {c}", f"keyfile {k}"]
    if require_cert:
        broker.listener.append("require_certificate true")
    return broker.start()


def test_ok_refused_and_unknown_name(tidegate_bin, mosquitto_factory, tmp_path):
    broker = mosquitto_factory().start()
    ok = f"tcp://127.0.0.1:{broker.port}"
    refused = f"tcp://127.0.0.1:{free_port()}"
    unknown = "tcp://no-such-broker.invalid:1883"
    r, res = check(tidegate_bin, write_config(tmp_path, [ok, refused, unknown]))
    assert r.returncode == 1, r
    assert res[ok] == "ok (MQTT 3.1.1)", r.stdout
    assert res[refused].startswith("error: connection refused: nothing listens on 127.0.0.1:")
    assert res[unknown].startswith("error: name not resolved:"), r.stdout
    # All good: exit 0.
    r, res = check(tidegate_bin, write_config(tmp_path, [ok]))
    assert r.returncode == 0 and res[ok] == "ok (MQTT 3.1.1)", r
    # The broker saw a client id of its own, so a running gateway is not thrown off.
    assert "tidegate-chk-check" in broker.log()


def test_a_port_that_does_not_speak_mqtt(tidegate_bin, tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    conns = []
    threading.Thread(target=lambda: conns.append(srv.accept()), daemon=True).start()
    r, res = check(tidegate_bin, write_config(tmp_path, [f"tcp://127.0.0.1:{port}"]))
    assert r.returncode == 1
    assert res[f"tcp://127.0.0.1:{port}"] == \
        "error: MQTT: no answer to CONNECT within 5s (is this an MQTT port?)", r.stdout
    srv.close()


def test_a_connect_that_times_out(tidegate_bin, tmp_path):
    # A listening socket that never accepts, its accept queue full: Linux
    # drops further SYNs, as a firewall dropping packets would.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fill = pending_connections(port, 3)
    try:
        uri = f"tcp://127.0.0.1:{port}"
        r, res = check(tidegate_bin, write_config(tmp_path, [uri]))
        assert r.returncode == 1, r
        assert res[uri] == (f"error: timed out after 5s connecting to 127.0.0.1:{port} "
                            "(a firewall dropping the packets, or the wrong address)"), r.stdout
    finally:
        for c in fill:
            c.close()
        srv.close()


def test_credentials(tidegate_bin, mosquitto_factory, tmp_path):
    broker = password_broker(mosquitto_factory)
    uri = f"tcp://127.0.0.1:{broker.port}"
    pw = tmp_path / "pw"
    pw.write_text("wrong\n")
    r, res = check(tidegate_bin, write_config(tmp_path, [uri], username=USER,
                                              password_file=str(pw)))
    assert r.returncode == 1
    assert res[uri].startswith("error: MQTT: not authorised: the broker refused these "
                               "credentials") or res[uri].startswith(
        "error: MQTT: bad user name or password"), r.stdout
    pw.write_text(PASSWORD + "\n")
    r, res = check(tidegate_bin, write_config(tmp_path, [uri], username=USER,
                                              password_file=str(pw)))
    assert r.returncode == 0 and res[uri] == "ok (MQTT 3.1.1)", r.stdout


def test_tls_verdicts(tidegate_bin, mosquitto_factory, pki, tmp_path):  # noqa: F811
    good = tls_mosquitto(mosquitto_factory, pki.server_crt, pki.server_key, pki.ca_crt)
    other_name = tls_mosquitto(mosquitto_factory, pki.other_server_crt, pki.other_server_key,
                               pki.ca_crt)
    needs_cert = tls_mosquitto(mosquitto_factory, pki.server_crt, pki.server_key, pki.ca_crt,
                               require_cert=True)
    u_good = f"ssl://127.0.0.1:{good.port}"
    u_name = f"ssl://127.0.0.1:{other_name.port}"
    u_cert = f"ssl://127.0.0.1:{needs_cert.port}"
    cfg = write_config(tmp_path, [u_good, u_name, u_cert],
                       tls={"ca_file": str(pki.ca_crt), "verify_hostname": "true"})
    r, res = check(tidegate_bin, cfg)
    assert r.returncode == 1
    assert res[u_good].startswith("ok (MQTT 3.1.1, TLSv1."), r.stdout
    assert res[u_name].startswith("error: TLS: host name mismatch: the broker's certificate is "
                                  "not for '127.0.0.1'"), r.stdout
    assert res[u_cert] == ("error: TLS: the broker requires a client certificate (set "
                           "mqtt.tls.cert_file and key_file)"), r.stdout
    # The wrong CA.
    cfg = write_config(tmp_path, [u_good], tls={"ca_file": str(pki.other_ca_crt)})
    r, res = check(tidegate_bin, cfg)
    assert res[u_good].startswith("error: TLS: the broker's certificate is signed by a CA this "
                                  "gateway does not trust"), r.stdout
    # With the client certificate, mutual TLS works.
    cfg = write_config(tmp_path, [u_cert], tls={"ca_file": str(pki.ca_crt),
                                                "cert_file": str(pki.client_crt),
                                                "key_file": str(pki.client_key)})
    r, res = check(tidegate_bin, cfg)
    assert r.returncode == 0, r.stdout


def test_tls_expired_certificate(tidegate_bin, mosquitto_factory, pki, tmp_path):  # noqa: F811
    d = pki.ca_crt.parent
    # A server certificate whose validity ended in 2021, signed by the test CA.
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n"
        "serial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n"
        "[any]\ncommonName = supplied\n")
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "old.key", "-out", "old.csr", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key",
            "-startdate", "20200101000000Z", "-enddate", "20210101000000Z",
            "-in", "old.csr", "-out", "old.crt", cwd=d)
    broker = tls_mosquitto(mosquitto_factory, d / "old.crt", d / "old.key", pki.ca_crt)
    uri = f"ssl://127.0.0.1:{broker.port}"
    r, res = check(tidegate_bin, write_config(tmp_path, [uri], tls={"ca_file": str(pki.ca_crt)}))
    assert res[uri].startswith("error: TLS: the broker's certificate has expired"), r.stdout
