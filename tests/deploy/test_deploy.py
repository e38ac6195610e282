"""Checks of the deployment files in deploy/.

Nothing in deploy/ can be exercised on the CI machine (no Docker engine, no Kubernetes cluster,
no systemd as init), so these tests check that every file parses and carries the settings the
service needs. Run:

    python3 -m pip install pytest pyyaml
    python3 -m pytest -q tests/deploy/test_deploy.py

Needs Python 3.11 (tomllib) and PyYAML. `systemd-analyze` and `kubectl` are used when they are
on PATH; without them those two checks print a note and pass.
"""

import configparser
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

PORT = 50051
METRICS_PORT = 9464
MONITORING = DEPLOY / "monitoring"
DATA_DIR = "/var/lib/hoso"
ROLES = {"desk_officer", "agency_officer", "auditor", "operator", "integration"}
TIME_UNITS = {"working_days", "working_hours", "calendar_days"}
HEX64 = re.compile(r"[0-9a-f]{64}")

DOCKERFILE_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip

SYSTEMD_SANDBOX = {
    "User": "hoso",
    "Group": "hoso",
    "DynamicUser": "no",
    "StateDirectory": "hoso",
    "ConfigurationDirectory": "hoso",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
    "TimeoutStopSec": "30",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "UMask": "0077",
    "ReadWritePaths": DATA_DIR,
    "LimitNOFILE": "65536",
    "Environment": f"HOSO_DATA_DIR={DATA_DIR}",
}


# ---------------------------------------------------------------------------------------------
# Loading helpers


def k8s_yaml_files():
    files = sorted(K8S.glob("*.yaml")) + sorted(K8S.glob("*.yml"))
    assert files, f"no YAML files in {K8S}"
    return files


def k8s_documents():
    """Every non-empty document of every YAML file under deploy/k8s, as (file, document)."""
    docs = []
    for path in k8s_yaml_files():
        with path.open(encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((path, doc))
    return docs


def k8s_object(kind, name=None):
    found = [
        doc
        for _, doc in k8s_documents()
        if doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def statefulset():
    return k8s_object("StatefulSet")


def hoso_container():
    containers = statefulset()["spec"]["template"]["spec"]["containers"]
    found = [c for c in containers if c["name"] == "hoso"]
    assert len(found) == 1, "the StatefulSet needs exactly one container named hoso"
    return found[0]


def container_port():
    ports = hoso_container().get("ports") or []
    grpc = [p for p in ports if p.get("name") == "grpc"]
    assert len(grpc) == 1, "the hoso container needs one port named grpc"
    return grpc[0]["containerPort"]


def configmap_toml():
    configmap = k8s_object("ConfigMap")
    assert "hoso.toml" in configmap.get("data", {}), "the ConfigMap needs a hoso.toml key"
    return tomllib.loads(configmap["data"]["hoso.toml"])


def secret_tokens_toml():
    secret = k8s_object("Secret", "hoso-tokens")
    assert "tokens.toml" in secret.get("stringData", {}), "Secret hoso-tokens needs stringData tokens.toml"
    return tomllib.loads(secret["stringData"]["tokens.toml"])


def load_toml(path):
    with path.open("rb") as f:
        return tomllib.load(f)


def dockerfile_instructions(path=DEPLOY / "Dockerfile"):
    """Parses a Dockerfile into (line number, INSTRUCTION, arguments) triples.

    Joins lines ending in a backslash, drops comment lines (also inside a continuation) and
    blank lines, and fails on a continuation that runs off the end of the file.
    """
    instructions = []
    pending = None  # (line number, text so far) of an instruction continued on the next line
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank line or comment (parser directives are comments too)
        if pending is None:
            pending = (number, "")
        text = pending[1] + " " + raw.rstrip()
        if text.endswith("\\"):
            pending = (pending[0], text[:-1])
            continue
        start, pending = pending[0], None
        word, _, args = text.strip().partition(" ")
        instructions.append((start, word.upper(), args.strip()))
    assert pending is None, f"{path}:{pending[0]}: line continuation runs off the end of the file"
    return instructions


def dockerfile_stages():
    """The instructions grouped by stage: a list of lists, each starting with its FROM."""
    stages = []
    for line, instruction, args in dockerfile_instructions():
        if instruction == "FROM":
            stages.append([])
        elif not stages and instruction != "ARG":
            pytest.fail(f"deploy/Dockerfile:{line}: {instruction} before the first FROM")
        if stages:
            stages[-1].append((line, instruction, args))
    return stages


def systemd_unit(path=DEPLOY / "hoso.service"):
    parser = configparser.ConfigParser(strict=False, interpolation=None, empty_lines_in_values=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    with path.open(encoding="utf-8") as f:
        parser.read_file(f)
    return parser


# ---------------------------------------------------------------------------------------------
# Kubernetes


def test_every_k8s_yaml_document_parses_and_has_api_version_kind_and_name():
    docs = k8s_documents()
    assert docs, "no documents in deploy/k8s"
    for path, doc in docs:
        where = path.relative_to(ROOT)
        assert isinstance(doc, dict), f"{where}: a document is not a mapping"
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], f"{where}: no apiVersion"
        assert isinstance(doc.get("kind"), str) and doc["kind"], f"{where}: no kind"
        metadata = doc.get("metadata")
        assert isinstance(metadata, dict) and metadata.get("name"), f"{where}: no metadata.name"


def test_every_namespaced_k8s_object_is_in_namespace_hoso():
    for path, doc in k8s_documents():
        if doc["kind"] in ("Namespace", "Kustomization"):
            continue
        namespace = doc["metadata"].get("namespace")
        assert namespace == "hoso", f"{path.name}: {doc['kind']} {doc['metadata']['name']} is in {namespace!r}"
    assert k8s_object("Namespace")["metadata"]["name"] == "hoso"


def test_kustomization_lists_exactly_the_other_yaml_files():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization.get("resources") or []
    assert len(resources) == len(set(resources)), f"resources repeated: {resources}"
    others = {p.name for p in k8s_yaml_files()} - {"kustomization.yaml"}
    assert set(resources) == others, (
        f"kustomization resources {sorted(resources)} differ from the YAML files {sorted(others)}"
    )


def test_kustomize_builds_the_manifests_when_kubectl_is_installed():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubectl is not on PATH: `kubectl kustomize deploy/k8s` not run")
        return
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in built)
    assert kinds == ["ConfigMap", "Namespace", "Secret", "Service", "Service", "Service", "StatefulSet"], kinds


def test_statefulset_has_exactly_one_replica():
    assert statefulset()["spec"].get("replicas") == 1, (
        "one process only may own the sled data directory: replicas must be 1"
    )


def test_statefulset_runs_as_non_root_uid_10001_with_a_locked_down_container():
    pod = statefulset()["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext") or {}
    assert pod_security.get("runAsNonRoot") is True
    assert pod_security.get("runAsUser") == 10001
    assert pod_security.get("fsGroup") == 10001
    assert (pod_security.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
    security = hoso_container().get("securityContext") or {}
    assert security.get("readOnlyRootFilesystem") is True
    assert security.get("allowPrivilegeEscalation") is False
    assert (security.get("capabilities") or {}).get("drop") == ["ALL"]


def test_statefulset_mounts_its_volume_claim_template_at_var_lib_hoso():
    templates = {t["metadata"]["name"]: t for t in statefulset()["spec"].get("volumeClaimTemplates") or []}
    mounts = [m for m in hoso_container().get("volumeMounts") or [] if m["mountPath"] == DATA_DIR]
    assert len(mounts) == 1, f"exactly one volumeMount at {DATA_DIR} expected"
    assert mounts[0]["name"] in templates, (
        f"the mount at {DATA_DIR} uses {mounts[0]['name']!r}, not a volumeClaimTemplate ({sorted(templates)})"
    )
    claim = templates[mounts[0]["name"]]["spec"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    pod_volumes = {v["name"] for v in statefulset()["spec"]["template"]["spec"].get("volumes") or []}
    assert mounts[0]["name"] not in pod_volumes, "the data volume must come from the claim template only"


def test_statefulset_probes_are_grpc_on_the_container_port():
    port = container_port()
    assert port == PORT
    container = hoso_container()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container, f"the hoso container has no {probe}"
        assert set(container[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, (
            f"{probe} must be a grpc probe only"
        )
        assert container[probe]["grpc"].get("port") == port, f"{probe} is not on port {port}"
        assert "service" not in container[probe]["grpc"], f'{probe} must ask for service "" (the default)'


def test_statefulset_resources_grace_period_and_image():
    template = statefulset()["spec"]["template"]
    assert template["spec"].get("terminationGracePeriodSeconds") == 30
    container = hoso_container()
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert container["resources"]["limits"] == {"memory": "4Gi"}
    assert container["image"] == "hoso:latest"
    selector = statefulset()["spec"]["selector"]["matchLabels"]
    labels = template["metadata"]["labels"]
    assert selector.items() <= labels.items(), "the selector does not match the pod template's labels"


def test_statefulset_mounts_the_configmap_and_the_tokens_secret_where_hoso_toml_says():
    pod = statefulset()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = {m["mountPath"]: m for m in hoso_container().get("volumeMounts") or []}

    config_mount = mounts.get("/etc/hoso/hoso.toml")
    assert config_mount is not None, "no mount at /etc/hoso/hoso.toml"
    assert config_mount.get("subPath") == "hoso.toml"
    config_volume = volumes[config_mount["name"]]
    assert config_volume["configMap"]["name"] == k8s_object("ConfigMap")["metadata"]["name"]

    tokens_file = Path(configmap_toml()["tokens_file"])
    tokens_mount = mounts.get(str(tokens_file.parent))
    assert tokens_mount is not None, f"no mount at {tokens_file.parent}, where tokens_file is"
    assert tokens_mount["mountPath"] == "/etc/hoso/secrets"
    secret_volume = volumes[tokens_mount["name"]]
    assert secret_volume["secret"]["secretName"] == "hoso-tokens"
    assert tokens_file.name in k8s_object("Secret", "hoso-tokens")["stringData"]

    assert statefulset()["spec"]["serviceName"] == "hoso-headless"


def test_services_are_a_headless_one_and_a_cluster_ip_one_on_the_grpc_port():
    labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    services = {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == "Service"}
    assert set(services) == {"hoso", "hoso-headless", "hoso-metrics"}, sorted(services)
    del services["hoso-metrics"]  # test_metrics_are_served_on_a_service_of_their_own
    assert services["hoso-headless"]["spec"].get("clusterIP") == "None"
    assert services["hoso"]["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert services["hoso"]["spec"].get("clusterIP") != "None"
    for name, service in services.items():
        assert service["spec"]["selector"].items() <= labels.items(), f"Service {name} selects no hoso pod"
        ports = service["spec"]["ports"]
        assert len(ports) == 1, f"Service {name}: one port expected"
        port = ports[0]
        assert port["name"] == "grpc" and port["port"] == PORT and port.get("appProtocol") == "grpc", (
            f"Service {name}: port must be grpc/{PORT} with appProtocol grpc"
        )
        assert port["targetPort"] in ("grpc", container_port())


# ---------------------------------------------------------------------------------------------
# TOML: configuration and tokens


LIMIT_KEYS = {
    "max_connections",
    "max_concurrent_streams",
    "max_concurrent_requests_per_connection",
    "request_timeout_seconds",
    "http2_keepalive_interval_seconds",
    "http2_keepalive_timeout_seconds",
    "tcp_keepalive_seconds",
    "idle_connection_seconds",
}


def check_config_keys(config, where):
    for key, kind in (
        ("listen", str),
        ("data_dir", str),
        ("tokens_file", str),
        ("log_format", str),
        ("calendar_files", list),
        ("max_clock_skew_seconds", int),
    ):
        assert key in config, f"{where}: no {key}"
        assert isinstance(config[key], kind), f"{where}: {key} is not a {kind.__name__}"
    assert config["log_format"] in ("text", "json"), f"{where}: log_format {config['log_format']!r}"
    assert re.fullmatch(r"\S+:\d+", config["listen"]), f"{where}: listen {config['listen']!r}"
    for lane in config.get("green_lane", []):
        assert set(lane) == {"procedure", "amount", "unit"}, f"{where}: green_lane keys {sorted(lane)}"
        assert isinstance(lane["procedure"], str) and isinstance(lane["amount"], int)
        assert lane["amount"] > 0 and lane["unit"] in TIME_UNITS, f"{where}: green_lane {lane}"
    if "disclosure" in config:
        letter = config["disclosure"]
        assert set(letter) <= {"issuing_body", "number_format", "place", "signer_title", "signer_name"}, (
            f"{where}: [disclosure] keys {sorted(letter)}"
        )
        assert all(isinstance(v, str) for v in letter.values()), f"{where}: [disclosure] values are text"
    limits = config.get("limits", {})
    assert set(limits) <= LIMIT_KEYS, f"{where}: unknown [limits] keys {sorted(set(limits) - LIMIT_KEYS)}"
    for key, value in limits.items():
        assert isinstance(value, int) and value > 0, f"{where}: limits.{key} = {value!r}"
    if {"idle_connection_seconds", "http2_keepalive_interval_seconds", "http2_keepalive_timeout_seconds"} <= set(limits):
        assert limits["idle_connection_seconds"] > (
            limits["http2_keepalive_interval_seconds"] + limits["http2_keepalive_timeout_seconds"]
        ), f"{where}: idle_connection_seconds must exceed the keepalive interval plus timeout"
    if "tls" in config:
        assert {"cert_file", "key_file"} <= set(config["tls"]), f"{where}: [tls] without cert/key"
        assert set(config["tls"]) <= {"cert_file", "key_file", "client_ca_file"}


def test_example_config_parses_with_every_documented_key():
    config = load_toml(DEPLOY / "hoso.example.toml")
    check_config_keys(config, "deploy/hoso.example.toml")
    assert config["listen"] == "127.0.0.1:50051"
    assert config["data_dir"] == DATA_DIR
    assert config["tokens_file"] == "/etc/hoso/tokens.toml"
    assert config["log_format"] == "json"
    assert config["calendar_files"] == []
    assert config["max_clock_skew_seconds"] == 300
    assert set(config["limits"]) == LIMIT_KEYS, "every [limits] key is documented with its default"
    assert config["allow_procedures_outside_catalogue"] is False
    assert config["green_lane"] == [{"procedure": "1.001234", "amount": 2, "unit": "working_days"}]
    assert set(config["disclosure"]) == {"issuing_body", "number_format", "place", "signer_title", "signer_name"}
    assert "tls" not in config, "the example is plaintext: [tls] must be commented out"
    text = (DEPLOY / "hoso.example.toml").read_text(encoding="utf-8")
    for line in ("# [tls]", '# cert_file = "/etc/hoso/tls/tls.crt"', '# key_file = "/etc/hoso/tls/tls.key"',
                 '# client_ca_file = "/etc/hoso/tls/ca.crt"'):  # fmt: skip
        assert line in text, f"the commented-out [tls] section lacks {line!r}"
    # With the commented-out section switched on, the file still parses and [tls] is complete.
    enabled = tomllib.loads(re.sub(r"(?m)^# (\[tls\]|cert_file|key_file|client_ca_file)", r"\1", text))
    assert set(enabled["tls"]) == {"cert_file", "key_file", "client_ca_file"}


def test_configmap_hoso_toml_parses_with_container_settings():
    config = configmap_toml()
    check_config_keys(config, "deploy/k8s/configmap.yaml hoso.toml")
    assert config["listen"] == "0.0.0.0:50051"
    assert config["data_dir"] == DATA_DIR
    assert config["tokens_file"] == "/etc/hoso/secrets/tokens.toml"


def check_tokens(tokens, where):
    entries = tokens.get("tokens")
    assert isinstance(entries, list) and entries, f"{where}: no [[tokens]] entries"
    for entry in entries:
        assert set(entry) == {"sha256", "subject", "role", "agency"}, f"{where}: keys {sorted(entry)}"
        assert HEX64.fullmatch(entry["sha256"]), f"{where}: sha256 {entry['sha256']!r} is not 64 lower-case hex"
        assert entry["role"] in ROLES, f"{where}: role {entry['role']!r}"
        assert entry["subject"], f"{where}: empty subject"
        assert re.fullmatch(r"[0-9A-Z]{1,8}(\.[0-9A-Z]{1,8}){1,5}", entry["agency"]), (
            f"{where}: agency {entry['agency']!r} is not a unit code like 000.00.04.G18"
        )
    hashes = [entry["sha256"] for entry in entries]
    assert len(hashes) == len(set(hashes)), f"{where}: a hash appears twice"
    return entries


def test_example_tokens_have_a_hex_sha256_and_one_entry_per_role():
    entries = check_tokens(load_toml(DEPLOY / "tokens.example.toml"), "deploy/tokens.example.toml")
    assert sorted(entry["role"] for entry in entries) == sorted(ROLES)
    text = (DEPLOY / "tokens.example.toml").read_text(encoding="utf-8")
    assert "hoso token new --role ROLE --subject NAME --agency CODE" in text


def test_secret_placeholder_tokens_have_a_hex_sha256_and_a_known_role():
    check_tokens(secret_tokens_toml(), "deploy/k8s/secret.yaml tokens.toml")
    text = (K8S / "secret.yaml").read_text(encoding="utf-8")
    assert "kubectl -n hoso create secret generic hoso-tokens --from-file=tokens.toml" in text


# ---------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_uses_only_known_instructions():
    instructions = dockerfile_instructions()
    assert instructions, "deploy/Dockerfile is empty"
    for line, instruction, _ in instructions:
        assert instruction in DOCKERFILE_INSTRUCTIONS, (
            f"deploy/Dockerfile:{line}: unknown instruction {instruction!r} (a broken line continuation?)"
        )


def test_dockerfile_has_a_rust_build_stage_and_a_slim_runtime_stage():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "deploy/Dockerfile needs a build stage and a runtime stage"
    first = stages[0][0][2].split()
    assert first[0] == "rust:1-bookworm" and first[1:] == ["AS", "build"], f"build stage: FROM {first}"
    assert stages[-1][0][2] == "debian:bookworm-slim", f"runtime stage: FROM {stages[-1][0][2]}"
    build_runs = " ".join(args for _, instruction, args in stages[0] if instruction == "RUN")
    assert "cargo build --release --locked -p hoso" in build_runs
    copies = [args for _, instruction, args in stages[-1] if instruction == "COPY"]
    assert "--from=build /src/target/release/hoso /usr/local/bin/hoso" in copies
    assert "deploy/hoso.example.toml /etc/hoso/hoso.toml" in copies
    for args in copies:
        if not args.startswith("--from"):
            source = args.split()[0]
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the build context"


def test_dockerfile_runtime_stage_runs_as_a_non_root_user():
    runtime = dockerfile_stages()[-1]
    users = [args for _, instruction, args in runtime if instruction == "USER"]
    assert users, "the runtime stage has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"the runtime stage runs as {users[-1]!r}"
    assert user == "10001"
    runs = " ".join(args for _, instruction, args in runtime if instruction == "RUN")
    assert "--uid 10001" in runs and "--gid 10001" in runs, "user hoso must have uid/gid 10001"


def test_dockerfile_exposes_50051_and_runs_hoso_serve():
    runtime = dockerfile_stages()[-1]
    settings = {}
    for _, instruction, args in runtime:
        settings.setdefault(instruction, []).append(args)
    exposed = " ".join(settings.get("EXPOSE", [])).split()
    assert "50051" in exposed or "50051/tcp" in exposed, f"EXPOSE {exposed}"
    assert "HOSO_LISTEN=0.0.0.0:50051" in settings.get("ENV", [])
    assert settings.get("VOLUME") == [DATA_DIR]
    assert settings.get("STOPSIGNAL") == ["SIGTERM"]
    assert json.loads(settings["ENTRYPOINT"][-1]) == ["/usr/local/bin/hoso"]
    assert json.loads(settings["CMD"][-1]) == ["serve", "--config", "/etc/hoso/hoso.toml"]
    runs = " ".join(settings.get("RUN", []))
    assert "-o 10001 -g 10001" in runs and DATA_DIR in runs, f"{DATA_DIR} must be owned by hoso"


def test_dockerignore_keeps_target_and_git_out_of_the_build_context():
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = {line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")}
    assert {"target", ".git"} <= patterns, f"patterns: {sorted(patterns)}"


# ---------------------------------------------------------------------------------------------
# systemd


def test_systemd_unit_has_unit_service_and_install_sections():
    unit = systemd_unit()
    assert {"Unit", "Service", "Install"} <= set(unit.sections()), unit.sections()
    assert unit["Install"].get("WantedBy") == "multi-user.target"


def test_systemd_unit_starts_hoso_serve_as_user_hoso():
    service = systemd_unit()["Service"]
    assert service.get("ExecStart", "").startswith("/usr/local/bin/hoso serve"), service.get("ExecStart")
    assert service["ExecStart"] == "/usr/local/bin/hoso serve --config /etc/hoso/hoso.toml"
    assert service.get("User") == "hoso"


@pytest.mark.parametrize("key", sorted(SYSTEMD_SANDBOX))
def test_systemd_unit_sets_service_key(key):
    service = systemd_unit()["Service"]
    assert key in service, f"[Service] has no {key}="
    assert service[key] == SYSTEMD_SANDBOX[key], f"{key}={service[key]!r}, expected {SYSTEMD_SANDBOX[key]!r}"


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze is not on PATH: `systemd-analyze verify` not run")
        return
    # verify checks that ExecStart's program exists; the hoso binary is not installed here.
    text = (DEPLOY / "hoso.service").read_text(encoding="utf-8")
    copy = tmp_path / "hoso.service"
    copy.write_text(re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", text), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"systemd-analyze verify failed:\n{output}"
    # Unknown keys and bad values are only warnings (exit status 0): fail on any line about the unit.
    complaints = [line for line in output.splitlines() if "hoso.service" in line]
    assert not complaints, "systemd-analyze verify complains:\n" + "\n".join(complaints)


# ---------------------------------------------------------------------------------------------
# Kubernetes over PostgreSQL (deploy/k8s-postgres, an overlay of deploy/k8s)

K8S_PG = DEPLOY / "k8s-postgres"


def k8s_pg_documents():
    docs = {}
    for path in sorted(K8S_PG.glob("*.yaml")):
        found = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        assert len(found) == 1, f"{path.relative_to(ROOT)}: expected one document, found {len(found)}"
        docs[path.name] = found[0]
    return docs


def test_k8s_postgres_overlay_lists_the_base_and_every_other_file():
    docs = k8s_pg_documents()
    kustomization = docs.pop("kustomization.yaml")
    assert kustomization["kind"] == "Kustomization" and kustomization["namespace"] == "hoso"
    resources = kustomization.get("resources") or []
    assert "../k8s" in resources, f"the overlay must build on deploy/k8s: {resources}"
    patches = [patch["path"] for patch in kustomization.get("patches") or []]
    listed = set(resources) - {"../k8s"} | set(patches)
    assert listed == set(docs), f"listed {sorted(listed)}, files {sorted(docs)}"
    for name, doc in docs.items():
        assert doc.get("apiVersion") and doc.get("kind"), f"{name}: no apiVersion or kind"
        assert doc["metadata"].get("namespace") == "hoso", f"{name}: not in namespace hoso"


def test_k8s_postgres_cluster_commits_wait_for_a_synchronous_standby():
    cluster = k8s_pg_documents()["cluster.yaml"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1" and cluster["kind"] == "Cluster"
    spec = cluster["spec"]
    assert spec["instances"] >= 3, "a primary and two standbys: one can be lost while commits go on"
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["method"] in ("any", "first") and synchronous["number"] >= 1, synchronous
    # "preferred" would fall back to single-copy commits, losing acknowledged commands with the primary.
    assert synchronous["dataDurability"] == "required", synchronous
    assert spec["postgresql"]["parameters"]["synchronous_commit"] == "on"
    assert spec["bootstrap"]["initdb"] == {"database": "hoso", "owner": "hoso"}
    assert spec["affinity"]["podAntiAffinityType"] == "required"


def test_k8s_postgres_statefulset_runs_two_replicas_on_the_clusters_uri():
    docs = k8s_pg_documents()
    patch = docs["statefulset-patch.yaml"]
    assert patch["kind"] == "StatefulSet" and patch["metadata"]["name"] == statefulset()["metadata"]["name"]
    assert patch["spec"]["replicas"] == 2
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == hoso_container()["name"], "the patch must name the base's container"
    (store,) = [env for env in container["env"] if env["name"] == "HOSO_STORE"]
    # CloudNativePG writes the owner's connection URI to the Secret <cluster>-app.
    cluster_name = docs["cluster.yaml"]["metadata"]["name"]
    assert store["valueFrom"]["secretKeyRef"] == {"name": f"{cluster_name}-app", "key": "uri"}
    anti = patch["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    pod_labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_k8s_postgres_disruption_budget_keeps_one_server():
    pdb = k8s_pg_documents()["poddisruptionbudget.yaml"]
    assert pdb["kind"] == "PodDisruptionBudget" and pdb["spec"]["minAvailable"] == 1
    pod_labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_kustomize_builds_the_postgres_overlay_when_kubectl_is_installed():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubectl is not on PATH: `kubectl kustomize deploy/k8s-postgres` not run")
        return
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S_PG)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in built)
    assert kinds == sorted(
        ["Cluster", "ConfigMap", "Namespace", "PodDisruptionBudget", "Secret", "Service", "Service", "Service",
         "StatefulSet"]  # fmt: skip
    ), kinds
    (sts,) = [doc for doc in built if doc["kind"] == "StatefulSet"]
    assert sts["spec"]["replicas"] == 2
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    names = [env["name"] for env in container["env"]]
    assert "HOSO_STORE" in names and "HOSO_LOG" in names, f"the patch must merge into the base's env: {names}"


def test_dockerfile_builds_the_features_given_as_a_build_argument():
    build = dockerfile_stages()[0]
    assert (build_arg := [args for _, i, args in build if i == "ARG"]) == ['HOSO_FEATURES=""'], build_arg
    runs = [args for _, i, args in build if i == "RUN"]
    assert 'cargo build --release --locked -p hoso --features "$HOSO_FEATURES"' in runs, runs


# ---------------------------------------------------------------------------------------------
# Two hosts under systemd (deploy/systemd-two-hosts)

TWO_HOSTS = DEPLOY / "systemd-two-hosts"


def postgresql_conf(path):
    """The `key = value` lines of a postgresql.conf fragment, values unquoted."""
    settings = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip().strip("'")
    return settings


def test_two_hosts_drop_in_reads_the_store_from_an_environment_file():
    drop_in = systemd_unit(TWO_HOSTS / "hoso-postgres.conf")
    assert drop_in["Service"]["EnvironmentFile"] == "/etc/hoso/store.env"
    assert "postgresql.service" in drop_in["Unit"]["After"]


def test_two_hosts_store_names_both_hosts_and_asks_for_the_writable_one():
    lines = [
        line for line in (TWO_HOSTS / "store.env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]  # fmt: skip
    (line,) = lines
    key, _, url = line.partition("=")
    assert key == "HOSO_STORE"
    match = re.fullmatch(r"postgres://hoso:[^@]+@([^/]+)/hoso\?target_session_attrs=read-write", url)
    assert match, url
    hosts = match.group(1).split(",")
    primary = postgresql_conf(TWO_HOSTS / "primary.conf")["listen_addresses"]
    standby = postgresql_conf(TWO_HOSTS / "standby.conf")["listen_addresses"]
    assert hosts == [f"{primary}:5432", f"{standby}:5432"], hosts


def test_two_hosts_primary_waits_for_the_standby_it_replicates_to():
    primary = postgresql_conf(TWO_HOSTS / "primary.conf")
    standby = postgresql_conf(TWO_HOSTS / "standby.conf")
    assert primary["synchronous_commit"] == "on" and primary["wal_level"] == "replica"
    conninfo = dict(pair.split("=", 1) for pair in standby["primary_conninfo"].split())
    assert conninfo["host"] == primary["listen_addresses"]
    assert primary["synchronous_standby_names"] == f"FIRST 1 ({conninfo['application_name']})"


def test_two_hosts_pg_hba_admits_both_hosts_with_scram():
    rows = [
        line.split() for line in (TWO_HOSTS / "pg_hba.conf").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]  # fmt: skip
    hosts = {postgresql_conf(TWO_HOSTS / name)["listen_addresses"] for name in ("primary.conf", "standby.conf")}
    for database, user in (("hoso", "hoso"), ("replication", "replicator")):
        admitted = {row[3].removesuffix("/32") for row in rows if row[1] == database and row[2] == user}
        assert admitted == hosts, f"{database}/{user}: {admitted}"
    assert all(row[0] == "host" and row[4] == "scram-sha-256" for row in rows), rows


def test_two_hosts_unit_with_drop_in_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze is not on PATH: `systemd-analyze verify` not run")
        return
    text = (DEPLOY / "hoso.service").read_text(encoding="utf-8")
    unit = tmp_path / "hoso.service"
    unit.write_text(re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", text), encoding="utf-8")
    drop_in_dir = tmp_path / "hoso.service.d"
    drop_in_dir.mkdir()
    (drop_in_dir / "postgres.conf").write_text(
        (TWO_HOSTS / "hoso-postgres.conf").read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"systemd-analyze verify failed:\n{output}"
    complaints = [line for line in output.splitlines() if "hoso" in line and "store.env" not in line]
    assert not complaints, "systemd-analyze verify complains:\n" + "\n".join(complaints)


# ---------------------------------------------------------------------------------------------
# Metrics: the port, the ServiceMonitor, the rules and the dashboard (deploy/monitoring)


def metrics_container_port():
    ports = [p for p in hoso_container().get("ports") or [] if p.get("name") == "metrics"]
    assert len(ports) == 1, "the hoso container needs one port named metrics"
    return ports[0]["containerPort"]


def metrics_service():
    return k8s_object("Service", "hoso-metrics")


def exported_metrics():
    """The metric names the server exports, as docs/operations.md lists them (the server's test
    checks that list against /metrics), with a histogram's _bucket, _sum and _count."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    table = text[text.index("### Every metric") :]
    table = table[: table.index("\n#", 1)]
    names = set()
    for name, kind in re.findall(r"^\| `(hoso_\w+)` \| (\w+) \|", table, re.M):
        names |= {name + s for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
    assert len(names) > 20, names
    return names


def queried_metrics(expr):
    """The hoso_ metric names a PromQL expression reads."""
    return set(re.findall(r"\bhoso_\w+", expr))


def test_metrics_are_served_on_a_service_of_their_own():
    assert configmap_toml()["metrics_listen"] == f"0.0.0.0:{METRICS_PORT}"
    assert metrics_container_port() == METRICS_PORT
    service = metrics_service()
    labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items(), "Service hoso-metrics selects no hoso pod"
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics" and port["port"] == METRICS_PORT
    assert port["targetPort"] in ("metrics", METRICS_PORT)
    # Only this Service has the metrics port: a pod is scraped once, not once per Service.
    for _, doc in k8s_documents():
        if doc["kind"] == "Service" and doc["metadata"]["name"] != "hoso-metrics":
            assert all(p["name"] != "metrics" for p in doc["spec"]["ports"]), doc["metadata"]["name"]


def monitoring_documents():
    docs = {}
    for path in sorted(MONITORING.glob("*.yaml")):
        (doc,) = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        docs[path.name] = doc
    return docs


def test_monitoring_kustomization_lists_every_file():
    docs = monitoring_documents()
    kustomization = docs.pop("kustomization.yaml")
    assert kustomization["namespace"] == "hoso"
    assert set(kustomization["resources"]) == set(docs), sorted(docs)
    (generated,) = kustomization["configMapGenerator"]
    assert generated["files"] == ["hoso-dashboard.json"]
    assert generated["options"]["labels"] == {"grafana_dashboard": "1"}
    for name, doc in docs.items():
        assert doc["metadata"]["namespace"] == "hoso", name


def test_the_service_monitor_selects_the_metrics_port_of_the_metrics_service():
    monitor = monitoring_documents()["servicemonitor.yaml"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    service = metrics_service()
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "the ServiceMonitor does not select hoso-metrics"
    for _, doc in k8s_documents():
        if doc["kind"] == "Service" and doc["metadata"]["name"] != "hoso-metrics":
            labels = doc["metadata"].get("labels", {})
            assert not selector.items() <= labels.items(), f"the ServiceMonitor selects {doc['metadata']['name']} too"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    port_names = [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["port"] in port_names and endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"


def test_the_prometheus_rules_are_the_runbooks_alerts_on_exported_metrics():
    rule = monitoring_documents()["prometheusrule.yaml"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    exported = exported_metrics()
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    alerts = runbook[runbook.index("## Alerts") : runbook.index("### Every metric")]
    documented = set()
    for row in re.findall(r"^\| .*$", alerts, re.M)[1:]:
        cell = re.split(r"(?<!\\)\|", row)[2]
        documented.add(" or ".join(e.replace("\\|", "|") for e in re.findall(r"`([^`]*)`", cell)))
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {r["expr"] for r in rules} == documented, "the PrometheusRule differs from docs/operations.md's alerts"
    for r in rules:
        assert r["alert"].startswith("Hoso") and r["labels"]["severity"] in ("page", "warn", "ticket"), r
        assert queried_metrics(r["expr"]) <= exported, f"{r['alert']} queries {queried_metrics(r['expr']) - exported}"


def test_the_grafana_dashboard_parses_and_queries_only_exported_metrics():
    dashboard = json.loads((MONITORING / "hoso-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] == "hoso" and dashboard["panels"], "the dashboard has no panels"
    exported = exported_metrics()
    queried = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            names = queried_metrics(target["expr"])
            assert names, f"panel {panel['title']!r}: {target['expr']!r} reads no hoso metric"
            assert names <= exported, f"panel {panel['title']!r} queries {names - exported}"
            queried |= names
    for variable in dashboard["templating"]["list"]:
        assert queried_metrics(variable.get("query", "")) <= exported, variable
    # The metrics an operator pages on are on the dashboard.
    assert {"hoso_store_accepting_writes", "hoso_projection_stopped", "hoso_grpc_requests_total"} <= queried
