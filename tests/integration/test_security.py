# Connecting to brokers that want TLS (private CA, mutual TLS) or a user name
# and password (SPEC §2 mqtt.tls, mqtt.username, mqtt.password_file). A
# failing connection is logged by the MQTT link and retried; nothing is
# published.
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tidegate_testkit import MQTT_TROUBLE_RE, check_reading_envelope, envelopes, sequence_sensor


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass
class Pki:
    ca_crt: Path
    other_ca_crt: Path
    server_crt: Path
    server_key: Path
    other_server_crt: Path
    other_server_key: Path
    client_crt: Path
    client_key: Path


def make_ca(folder: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


def make_leaf(folder: Path, name: str, ca: str, cn: str, ext: str) -> None:
    (folder / f"{name}.ext").write_text(ext)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=folder)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=folder)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    """A CA, a server certificate for localhost / 127.0.0.1 and a client
    certificate signed by it, and an unrelated second CA."""
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_leaf(d, "server", "ca", "localhost",
              "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
              "basicConstraints=CA:FALSE\n"
              "keyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=serverAuth\n")
    make_leaf(d, "otherhost", "ca", "otherhost",
              "subjectAltName=DNS:otherhost\n"
              "basicConstraints=CA:FALSE\n"
              "keyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=serverAuth\n")
    make_leaf(d, "client", "ca", "tidegate-client",
              "basicConstraints=CA:FALSE\n"
              "keyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=clientAuth\n")
    return Pki(d / "ca.crt", d / "other-ca.crt", d / "server.crt", d / "server.key",
               d / "otherhost.crt", d / "otherhost.key", d / "client.crt", d / "client.key")


def tls_broker(mosquitto_factory, pki: Pki, require_certificate: bool = False,
               server: str = "localhost"):
    broker = mosquitto_factory()
    crt_src, key_src = ((pki.server_crt, pki.server_key) if server == "localhost"
                        else (pki.other_server_crt, pki.other_server_key))
    # Mosquitto reads these as user mosquitto: copies inside its own folder.
    ca = broker.file("ca.crt", pki.ca_crt.read_bytes())
    crt = broker.file("server.crt", crt_src.read_bytes())
    key = broker.file("server.key", key_src.read_bytes(), mode=0o600)
    broker.listener += [f"cafile {ca}", f"certfile {crt}", f"keyfile {key}"]
    if require_certificate:
        broker.listener.append("require_certificate true")
    return broker.start()


def assert_refused(gw, sub) -> None:
    """The gateway logs the failed connect, keeps running and retrying (a
    second failure after the ~1 s backoff), and nothing reaches the broker."""
    gw.wait_for_log(MQTT_TROUBLE_RE, timeout=10, count=2)
    assert gw.running(), f"the gateway must keep running and retrying{gw.exit_note()}:\n{gw.log()}"
    assert sub.snapshot() == [], "events arrived over a connection that must fail"


SENSOR = sequence_sensor("vault.temp", values=[20, 21, 22], interval="200ms", unit="°C")


def test_tls_with_the_wrong_ca_fails_and_is_logged(
        make_config, start_gateway, subscribe, mosquitto_factory, pki):
    broker = tls_broker(mosquitto_factory, pki)
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"ssl://localhost:{broker.port}", "tls": {"ca_file": str(pki.other_ca_crt)}})
    sub = subscribe(f"{cfg.base}/#", port=broker.port, host="localhost",
                    tls={"ca_certs": str(pki.ca_crt)})
    gw = start_gateway(cfg)
    assert_refused(gw, sub)


def test_tls_with_the_right_ca_delivers(make_config, start_gateway, subscribe,
                                        mosquitto_factory, pki):
    broker = tls_broker(mosquitto_factory, pki)
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"ssl://localhost:{broker.port}", "tls": {"ca_file": str(pki.ca_crt)}})
    sub = subscribe(f"{cfg.base}/events/#", port=broker.port, host="localhost",
                    tls={"ca_certs": str(pki.ca_crt)})
    gw = start_gateway(cfg)
    for env in envelopes(sub.wait_count(3)):
        check_reading_envelope(env, cfg.gateway_id, SENSOR)
    assert gw.running()


def test_tls_hostname_is_verified(make_config, start_gateway, subscribe, mosquitto_factory,
                                  pki):
    """A certificate from the trusted CA, but for another host: refused while
    verify_hostname is on (the default)."""
    broker = tls_broker(mosquitto_factory, pki, server="otherhost")
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"ssl://localhost:{broker.port}", "tls": {"ca_file": str(pki.ca_crt)}})
    sub = subscribe(f"{cfg.base}/#", port=broker.port, host="localhost",
                    tls={"ca_certs": str(pki.ca_crt)}, tls_insecure=True)
    gw = start_gateway(cfg)
    assert_refused(gw, sub)


def test_tls_verify_hostname_false_accepts_another_name(
        make_config, start_gateway, subscribe, mosquitto_factory, pki):
    broker = tls_broker(mosquitto_factory, pki, server="otherhost")
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"ssl://localhost:{broker.port}",
        "tls": {"ca_file": str(pki.ca_crt), "verify_hostname": False}})
    sub = subscribe(f"{cfg.base}/events/#", port=broker.port, host="localhost",
                    tls={"ca_certs": str(pki.ca_crt)}, tls_insecure=True)
    gw = start_gateway(cfg)
    for env in envelopes(sub.wait_count(3)):
        check_reading_envelope(env, cfg.gateway_id, SENSOR)
    assert gw.running()


def test_mutual_tls_with_a_client_certificate(make_config, start_gateway, subscribe,
                                              mosquitto_factory, pki):
    broker = tls_broker(mosquitto_factory, pki, require_certificate=True)
    client_tls = {"ca_certs": str(pki.ca_crt), "certfile": str(pki.client_crt),
                  "keyfile": str(pki.client_key)}
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"ssl://localhost:{broker.port}",
        "tls": {"ca_file": str(pki.ca_crt), "cert_file": str(pki.client_crt),
                "key_file": str(pki.client_key)}})
    sub = subscribe(f"{cfg.base}/events/#", port=broker.port, host="localhost",
                    tls=client_tls)
    gw = start_gateway(cfg)
    for env in envelopes(sub.wait_count(3)):
        check_reading_envelope(env, cfg.gateway_id, SENSOR)
    assert gw.running()


def test_mutual_tls_without_a_client_certificate_fails(
        make_config, start_gateway, subscribe, mosquitto_factory, pki):
    broker = tls_broker(mosquitto_factory, pki, require_certificate=True)
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"ssl://localhost:{broker.port}", "tls": {"ca_file": str(pki.ca_crt)}})
    sub = subscribe(f"{cfg.base}/#", port=broker.port, host="localhost",
                    tls={"ca_certs": str(pki.ca_crt), "certfile": str(pki.client_crt),
                         "keyfile": str(pki.client_key)})
    gw = start_gateway(cfg)
    assert_refused(gw, sub)


# --- user name and password ------------------------------------------------

USER, PASSWORD = "gateway", "s3cret pass"


def password_broker(mosquitto_factory):
    broker = mosquitto_factory(extra=["allow_anonymous false"])
    pwfile = broker.dir / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), USER, PASSWORD],
                   check=True, capture_output=True, timeout=30)
    broker.file("passwd", pwfile.read_bytes(), mode=0o600)
    broker.extra.append(f"password_file {pwfile}")
    return broker.start()


def test_username_and_password_file(make_config, start_gateway, subscribe, mosquitto_factory,
                                    tmp_path):
    broker = password_broker(mosquitto_factory)
    pw = tmp_path / "mqtt-password"
    pw.write_text(PASSWORD + "\n")  # as `echo PASSWORD > file` writes it
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"tcp://127.0.0.1:{broker.port}", "username": USER, "password_file": str(pw)})
    sub = subscribe(f"{cfg.base}/events/#", port=broker.port, auth=(USER, PASSWORD))
    gw = start_gateway(cfg)
    for env in envelopes(sub.wait_count(3)):
        check_reading_envelope(env, cfg.gateway_id, SENSOR)
    assert gw.running()


def test_wrong_password_fails_and_is_logged(make_config, start_gateway, subscribe,
                                            mosquitto_factory, tmp_path):
    broker = password_broker(mosquitto_factory)
    pw = tmp_path / "mqtt-password"
    pw.write_text("not the password")
    cfg = make_config(sensors=[SENSOR], mqtt={
        "uri": f"tcp://127.0.0.1:{broker.port}", "username": USER, "password_file": str(pw)})
    sub = subscribe(f"{cfg.base}/#", port=broker.port, auth=(USER, PASSWORD))
    gw = start_gateway(cfg)
    assert_refused(gw, sub)
