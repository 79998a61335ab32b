//! Offline checks of the deployment files: `Dockerfile`, `compose.yaml`, `deploy/` and `k8s/`.
//!
//! No container engine or cluster is needed. The files are parsed and checked against what
//! the binaries actually read and serve: environment variable names come from
//! `shared/src/config.rs` and `shared/src/telemetry.rs` (plus the handoff secrets named in the
//! tenants file), admin ports from the `*_ADDR` variables or their defaults, and the sandbox's
//! flags from `sim/src/main.rs`. A deploy file that drifts from the code fails here instead of
//! in a cluster. When `kubectl` is installed, every kustomization is also rendered and the
//! rendered Deployments go through the same checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

// ---------------------------------------------------------------------------------------------
// What the code says
// ---------------------------------------------------------------------------------------------

/// The external contract's variables (DESIGN "External contract"). Each must still be read
/// somewhere in `shared`, or the deploy files would be configuring nothing.
const CONTRACT_VARS: &[&str] = &[
    "AMQP_URL",
    "REDIS_URL",
    "PARTITIONS",
    "INGRESS_ADDR",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_API_BASE",
    "CALCOM_API_BASE",
    "CALCOM_API_KEY",
    "TENANTS_FILE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "RUST_LOG",
];

/// Variables whose values are credentials: deploy files must not carry real-looking values.
const SECRET_VARS: &[&str] = &[
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
    "CALCOM_API_KEY",
];

/// The fleet's long-running binaries: (name, admin-address variable, default admin port).
const FLEET: &[(&str, &str, u16)] = &[
    ("ingress", "INGRESS_ADDR", 8080),
    ("worker", "WORKER_ADMIN_ADDR", 9090),
    ("scheduler", "SCHEDULER_ADMIN_ADDR", 9091),
];

/// RSS targets (MiB) the memory requests must stay within.
const MEMORY_TARGET_MIB: &[(&str, u64)] = &[("ingress", 50), ("worker", 100)];

/// The binaries drain within this long after SIGTERM.
const DRAIN_SECONDS: i64 = 10;
const DEFAULT_PARTITIONS: u64 = 16;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("worker crate sits in the workspace root")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Upper-case string literals in the configuration sources: exactly the variable names read.
fn variables_read_by_the_binaries() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in ["shared/src/config.rs", "shared/src/telemetry.rs"] {
        let text = read(file);
        for (i, piece) in text.split('"').enumerate() {
            let is_literal = i % 2 == 1;
            if is_literal
                && piece.len() >= 4
                && piece.starts_with(|c: char| c.is_ascii_uppercase())
                && piece
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                names.insert(piece.to_owned());
            }
        }
    }
    names
}

/// Handoff signing secrets are read from the variables the tenants file names.
fn tenant_secret_variables() -> BTreeSet<String> {
    read("config/tenants.toml")
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("secret_env")?.trim_start();
            let value = rest.strip_prefix('=')?.trim();
            Some(value.trim_matches('"').to_owned())
        })
        .collect()
}

fn known_variables() -> BTreeSet<String> {
    let mut known = variables_read_by_the_binaries();
    known.extend(tenant_secret_variables());
    known
}

/// Long flags of `sim load` (its own fields and the flattened common ones), from the source.
fn sim_load_flags() -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("sim/src/main.rs")).ok()?;
    let fields_of = |start: &str, end: &str| -> Vec<String> {
        let Some(from) = text.find(start) else {
            return Vec::new();
        };
        text[from + start.len()..]
            .lines()
            .take_while(|line| line.trim() != end)
            .filter_map(|line| {
                let line = line.trim();
                let (name, _) = line.split_once(": ")?;
                (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                    .then(|| format!("--{}", name.replace('_', "-")))
            })
            .collect()
    };
    let mut flags: BTreeSet<String> = fields_of("Load {", "},").into_iter().collect();
    if flags.is_empty() {
        return None;
    }
    flags.extend(fields_of("struct Common {", "}"));
    flags.remove("--common");
    Some(flags)
}

// ---------------------------------------------------------------------------------------------
// YAML helpers
// ---------------------------------------------------------------------------------------------

fn parse_documents(text: &str, origin: &str) -> Result<Vec<Value>, String> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let mut value =
            Value::deserialize(document).map_err(|e| format!("{origin}: not valid YAML: {e}"))?;
        value
            .apply_merge()
            .map_err(|e| format!("{origin}: bad merge key: {e}"))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

fn load(relative: &str) -> Vec<Value> {
    parse_documents(&read(relative), relative).unwrap_or_else(|e| panic!("{e}"))
}

fn yaml_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files_under(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|k| !k.is_empty())
        .try_fold(value, |v, key| v.get(key))
}

fn text(value: &Value, path: &str) -> Option<String> {
    match get(value, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int(value: &Value, path: &str) -> Option<i64> {
    match get(value, path)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn seq<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    get(value, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn strings(value: &Value, path: &str) -> Vec<String> {
    seq(value, path)
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

fn string_map(value: &Value, path: &str) -> BTreeMap<String, String> {
    get(value, path)
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let k = k.as_str()?.to_owned();
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => String::new(),
                    };
                    Some((k, v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn port_of_addr(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

/// `${NAME:-default}` → `default`; anything else unchanged.
fn compose_default(value: &str) -> &str {
    value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .and_then(|v| v.split_once(":-"))
        .map_or(value, |(_, default)| default)
}

fn report(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------------------
// Whole-tree checks
// ---------------------------------------------------------------------------------------------

#[test]
fn every_yaml_file_parses_and_every_manifest_is_named() {
    let mut files = vec![root().join("compose.yaml")];
    yaml_files_under(&root().join("deploy"), &mut files);
    yaml_files_under(&root().join("k8s"), &mut files);
    assert!(files.len() > 5, "deploy files missing: {files:?}");
    let mut problems = Vec::new();
    for file in &files {
        let origin = file.strip_prefix(root()).unwrap().display().to_string();
        let documents = match parse_documents(&std::fs::read_to_string(file).unwrap(), &origin) {
            Ok(documents) => documents,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if documents.is_empty() {
            problems.push(format!("{origin}: empty"));
        }
        if !origin.starts_with("k8s/") {
            continue;
        }
        for document in &documents {
            let kind = text(document, "kind").unwrap_or_default();
            if text(document, "apiVersion").is_none() || kind.is_empty() {
                problems.push(format!("{origin}: a document without apiVersion/kind"));
            } else if kind != "Kustomization" && text(document, "metadata.name").is_none() {
                problems.push(format!("{origin}: a {kind} without metadata.name"));
            }
        }
    }
    report(problems);
}

#[test]
fn the_documented_variables_are_still_read_by_the_code() {
    let read = variables_read_by_the_binaries();
    let missing: Vec<_> = CONTRACT_VARS
        .iter()
        .filter(|v| !read.contains(**v))
        .collect();
    assert!(
        missing.is_empty(),
        "documented variables no longer read: {missing:?}"
    );
    assert!(
        !tenant_secret_variables().is_empty(),
        "the example tenants file names handoff secrets; the scan found none"
    );
}

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------

/// The Dockerfile with its `ARG` defaults substituted, as (instruction, rest) pairs.
fn dockerfile() -> Vec<(String, String)> {
    let raw = read("Dockerfile").replace("\\\n", " ");
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for line in raw.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut rest = rest.trim().to_owned();
        for (name, value) in &args {
            rest = rest.replace(&format!("${{{name}}}"), value);
        }
        let instruction = instruction.to_ascii_uppercase();
        if instruction == "ARG"
            && let Some((name, value)) = rest.split_once('=')
        {
            args.insert(name.to_owned(), value.to_owned());
        }
        out.push((instruction, rest));
    }
    out
}

fn dockerfile_runtime_uid() -> Option<u32> {
    let lines = dockerfile();
    let user = lines.iter().rev().find(|(i, _)| i == "USER")?;
    user.1.split(':').next()?.parse().ok()
}

#[test]
fn dockerfile_builds_every_binary_into_a_slim_non_root_image() {
    let lines = dockerfile();
    let froms: Vec<&String> = lines
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, r)| r)
        .collect();
    let mut problems = Vec::new();
    if froms.len() < 2 {
        problems.push("not a multi-stage build".to_owned());
    }
    if !froms.first().is_some_and(|f| f.starts_with("rust:")) {
        problems.push(format!("first stage is not a rust builder: {froms:?}"));
    }
    if !froms
        .last()
        .is_some_and(|f| f.starts_with("debian:bookworm-slim"))
    {
        problems.push(format!(
            "runtime stage is not debian:bookworm-slim: {froms:?}"
        ));
    }
    let runtime_start = lines
        .iter()
        .rposition(|(i, _)| i == "FROM")
        .unwrap_or_default();
    let runtime = &lines[runtime_start..];
    match dockerfile_runtime_uid() {
        Some(0) | None => problems.push("runtime USER is missing, root or not numeric".into()),
        Some(_) => {}
    }
    if !runtime.iter().any(|(i, _)| i == "ENTRYPOINT") {
        problems.push("runtime stage has no ENTRYPOINT".into());
    }
    let build = lines
        .iter()
        .find(|(i, r)| i == "RUN" && r.contains("cargo build"))
        .map(|(_, r)| r.clone())
        .unwrap_or_default();
    if !build.contains("--release") || !build.contains("--locked") {
        problems.push("cargo build is not --release --locked".into());
    }
    for binary in ["ingress", "worker", "scheduler", "sim"] {
        if !build.contains(&format!("--bin {binary}")) {
            problems.push(format!("the image does not build `{binary}`"));
        }
        if !root().join(binary).join("src/main.rs").exists() {
            problems.push(format!(
                "`{binary}` is built but {binary}/src/main.rs is missing"
            ));
        }
    }
    // Compose healthchecks run curl inside the container.
    if !runtime
        .iter()
        .any(|(i, r)| i == "RUN" && r.contains("apt-get install") && r.contains("curl"))
    {
        problems.push("runtime stage lacks curl, which the compose healthchecks use".into());
    }
    let ignore = read(".dockerignore");
    for must in ["target", ".git"] {
        if !ignore
            .lines()
            .any(|l| l.trim().trim_end_matches('/') == must)
        {
            problems.push(format!(".dockerignore does not exclude {must}/"));
        }
    }
    report(problems);
}

// ---------------------------------------------------------------------------------------------
// compose.yaml
// ---------------------------------------------------------------------------------------------

fn compose() -> Value {
    load("compose.yaml")
        .into_iter()
        .next()
        .expect("compose.yaml is empty")
}

fn compose_environment(service: &Value) -> BTreeMap<String, String> {
    match get(service, "environment") {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (item.to_owned(), String::new()),
            })
            .collect(),
        Some(_) => string_map(service, "environment"),
        None => BTreeMap::new(),
    }
}

fn compose_runs_fleet_image(service: &Value) -> bool {
    get(service, "build").is_some()
}

#[test]
fn compose_has_the_fleet_its_dependencies_and_tracing() {
    let compose = compose();
    let services = get(&compose, "services").expect("compose has services");
    let mut problems = Vec::new();
    for name in [
        "rabbitmq",
        "redis",
        "otel-collector",
        "jaeger",
        "ingress",
        "worker",
        "scheduler",
        "sim-load",
    ] {
        if services.get(name).is_none() {
            problems.push(format!("service `{name}` is missing"));
        }
    }
    let image = |s: &str| text(services, &format!("{s}.image")).unwrap_or_default();

    // Quorum-queue delivery limits need RabbitMQ 3.10 or later.
    let rabbit = image("rabbitmq");
    let version = rabbit
        .split_once(':')
        .map(|(_, tag)| tag)
        .unwrap_or_default();
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if !rabbit.starts_with("rabbitmq:")
        || (major, minor) < (3, 10)
        || !version.contains("management")
    {
        problems.push(format!(
            "rabbitmq image `{rabbit}` is not a 3.10+ management image"
        ));
    }
    for dependency in ["rabbitmq", "redis"] {
        if strings(services, &format!("{dependency}.healthcheck.test")).is_empty() {
            problems.push(format!("`{dependency}` has no healthcheck"));
        }
    }

    if !image("otel-collector").contains("otel/opentelemetry-collector-contrib") {
        problems.push("collector is not otel/opentelemetry-collector-contrib".into());
    }
    let collector_volumes = strings(services, "otel-collector.volumes");
    match collector_volumes
        .iter()
        .find(|v| v.contains("otel-collector.yaml"))
    {
        Some(volume) => {
            let source = volume.split(':').next().unwrap_or_default();
            if !root().join(source.trim_start_matches("./")).is_file() {
                problems.push(format!("collector config `{source}` does not exist"));
            }
        }
        None => problems.push("collector does not mount deploy/otel-collector.yaml".into()),
    }
    if !image("jaeger").contains("jaegertracing/all-in-one") {
        problems.push("trace viewer is not Jaeger all-in-one".into());
    }
    if text(services, "jaeger.environment.COLLECTOR_OTLP_ENABLED").as_deref() != Some("true") {
        problems.push("Jaeger does not have OTLP enabled".into());
    }
    report(problems);
}

#[test]
fn compose_fleet_services_are_healthchecked_drained_and_ordered() {
    let compose = compose();
    let services = get(&compose, "services").expect("compose has services");
    let mut problems = Vec::new();
    for &(binary, addr_var, default_port) in FLEET {
        let Some(service) = services.get(binary) else {
            problems.push(format!("service `{binary}` is missing"));
            continue;
        };
        let command = strings(service, "command");
        if command.first().map(String::as_str) != Some(binary) {
            problems.push(format!(
                "`{binary}` runs {command:?}, not the `{binary}` binary"
            ));
        }
        let env = compose_environment(service);
        let port = env
            .get(addr_var)
            .and_then(|a| port_of_addr(a))
            .unwrap_or(default_port);
        let check = strings(service, "healthcheck.test").join(" ");
        if !check.contains(&format!(":{port}/healthz")) {
            problems.push(format!(
                "`{binary}` healthcheck `{check}` does not hit /healthz on its port {port}"
            ));
        }
        if text(service, "stop_grace_period").as_deref() != Some("15s") {
            problems.push(format!("`{binary}` stop_grace_period is not 15s"));
        }
        let mut needs = vec!["rabbitmq"];
        if binary != "ingress" {
            needs.push("redis");
        }
        for dependency in needs {
            if text(service, &format!("depends_on.{dependency}.condition")).as_deref()
                != Some("service_healthy")
            {
                problems.push(format!(
                    "`{binary}` does not wait for `{dependency}` to be healthy"
                ));
            }
        }
        match text(service, "build.context") {
            Some(context) => {
                let dockerfile = text(service, "build.dockerfile").unwrap_or("Dockerfile".into());
                if !root().join(&context).join(&dockerfile).is_file() {
                    problems.push(format!("`{binary}` builds from a missing {dockerfile}"));
                }
            }
            None => problems.push(format!("`{binary}` does not build the fleet image")),
        }
        if binary != "ingress" {
            // Scaled services: a fixed name or host port would collide between replicas.
            if get(service, "container_name").is_some() {
                problems.push(format!("`{binary}` has a container_name but is scalable"));
            }
            if !seq(service, "ports").is_empty() {
                problems.push(format!("`{binary}` publishes host ports but is scalable"));
            }
        }
        if binary != "ingress" && text(service, "environment.TENANTS_FILE").is_some() {
            let tenants = text(service, "environment.TENANTS_FILE").unwrap();
            let mounted = strings(service, "volumes").iter().any(|v| {
                let mut parts = v.split(':');
                let (source, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                target == tenants && root().join(source.trim_start_matches("./")).is_file()
            });
            if !mounted {
                problems.push(format!("`{binary}` reads {tenants}, which nothing mounts"));
            }
        }
        if let Some(endpoint) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            // The exporter speaks OTLP over HTTP: the collector's 4318, not gRPC's 4317.
            if !endpoint.contains("otel-collector:4318") {
                problems.push(format!(
                    "`{binary}` exports to {endpoint}, not the collector's HTTP port"
                ));
            }
        }
    }
    let replicas = int(services, "worker.deploy.replicas");
    if replicas.is_none_or(|r| r < 1) {
        problems.push("worker has no deploy.replicas".into());
    }
    report(problems);
}

#[test]
fn compose_environment_uses_only_variables_the_binaries_read() {
    let compose = compose();
    let services = get(&compose, "services")
        .and_then(Value::as_mapping)
        .expect("compose has services");
    let known = known_variables();
    let mut problems = Vec::new();
    let mut partitions = BTreeMap::new();
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        if !compose_runs_fleet_image(service) {
            continue;
        }
        let env = compose_environment(service);
        for (var, value) in &env {
            if !known.contains(var) {
                problems.push(format!("`{name}` sets {var}, which no binary reads"));
            }
            if SECRET_VARS.contains(&var.as_str()) || var.ends_with("_SECRET") {
                // Overridable from the shell, with a default nobody could mistake for real.
                let default = compose_default(value);
                if !value.starts_with(&format!("${{{var}:-")) || !default.contains("NOT") {
                    problems.push(format!(
                        "`{name}` {var} should be ${{{var}:-<obviously fake>}}, is `{value}`"
                    ));
                }
            }
        }
        partitions.insert(name.to_owned(), env.get("PARTITIONS").cloned());
    }
    let ingress = compose_environment(&services["ingress"]);
    for var in ["WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "AMQP_URL"] {
        if !ingress.contains_key(var) {
            problems.push(format!("ingress lacks {var}"));
        }
    }
    let worker = compose_environment(&services["worker"]);
    for var in [
        "WHATSAPP_ACCESS_TOKEN",
        "TENANTS_FILE",
        "REDIS_URL",
        "AMQP_URL",
    ] {
        if !worker.contains_key(var) {
            problems.push(format!("worker lacks {var}"));
        }
    }
    let distinct: BTreeSet<_> = partitions.values().collect();
    if distinct.len() != 1 || distinct.contains(&None) {
        problems.push(format!(
            "PARTITIONS must be set and equal everywhere: {partitions:?}"
        ));
    }
    report(problems);
}

#[test]
fn compose_load_profile_runs_the_sandbox_with_real_flags() {
    let compose = compose();
    let sim = get(&compose, "services.sim-load").expect("sim-load service");
    let mut problems = Vec::new();
    if !strings(sim, "profiles").iter().any(|p| p == "load") {
        problems.push("sim-load is not in the `load` profile".to_owned());
    }
    let command = strings(sim, "command");
    if command.get(..2) != Some(&["sim".to_owned(), "load".to_owned()][..]) {
        problems.push(format!("sim-load runs {command:?}, not `sim load`"));
    }
    for dependency in ["rabbitmq", "redis"] {
        if text(sim, &format!("depends_on.{dependency}.condition")).as_deref()
            != Some("service_healthy")
        {
            problems.push(format!("sim-load does not wait for `{dependency}`"));
        }
    }
    // The flags must exist in the sim's CLI, or the profile fails at its first argument.
    if let Some(flags) = sim_load_flags() {
        for flag in command.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or_default();
            if !flags.contains(flag) {
                problems.push(format!("`sim load` has no flag {flag} (it has {flags:?})"));
            }
        }
    }
    report(problems);
}

#[test]
fn otel_collector_receives_otlp_and_exports_traces_to_jaeger() {
    let config = load("deploy/otel-collector.yaml")
        .into_iter()
        .next()
        .expect("collector config");
    let mut problems = Vec::new();
    for protocol in ["grpc", "http"] {
        if get(&config, &format!("receivers.otlp.protocols.{protocol}")).is_none() {
            problems.push(format!("OTLP receiver lacks {protocol}"));
        }
    }
    let pipelines = get(&config, "service.pipelines")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    for (pipeline, body) in &pipelines {
        let pipeline = pipeline.as_str().unwrap_or_default();
        for section in ["receivers", "processors", "exporters"] {
            for component in strings(body, section) {
                if get(&config, section)
                    .and_then(|s| s.get(component.as_str()))
                    .is_none()
                {
                    problems.push(format!(
                        "{pipeline}: {section} `{component}` is not defined"
                    ));
                }
            }
        }
    }
    let traces = pipelines
        .get("traces")
        .map(|p| strings(p, "exporters"))
        .unwrap_or_default();
    let to_jaeger = traces.iter().any(|exporter| {
        get(&config, "exporters")
            .and_then(|e| e.get(exporter.as_str()))
            .and_then(|e| text(e, "endpoint"))
            .is_some_and(|endpoint| endpoint.contains("jaeger:"))
    });
    if !to_jaeger {
        problems.push("the traces pipeline does not export to the jaeger service".into());
    }
    let compose = compose();
    if get(&compose, "services.jaeger").is_none() {
        problems.push("the collector exports to `jaeger`, which compose does not run".into());
    }
    report(problems);
}

// ---------------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------------

/// Every manifest a kustomization pulls in from files (recursively through directories),
/// plus its generated ConfigMaps as (name, keys) pairs.
struct Kustomized {
    manifests: Vec<Value>,
    generated_config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

fn kustomize(dir: &Path, problems: &mut Vec<String>) -> Kustomized {
    let mut out = Kustomized {
        manifests: Vec::new(),
        generated_config_maps: BTreeMap::new(),
    };
    let file = dir.join("kustomization.yaml");
    let origin = file
        .strip_prefix(root())
        .unwrap_or(&file)
        .display()
        .to_string();
    let Ok(source) = std::fs::read_to_string(&file) else {
        problems.push(format!("{origin} is missing"));
        return out;
    };
    let kustomization = match parse_documents(&source, &origin) {
        Ok(mut d) if !d.is_empty() => d.remove(0),
        Ok(_) => return out,
        Err(e) => {
            problems.push(e);
            return out;
        }
    };
    for resource in strings(&kustomization, "resources") {
        let path = dir.join(&resource);
        if path.is_dir() {
            let nested = kustomize(&path, problems);
            out.manifests.extend(nested.manifests);
            out.generated_config_maps
                .extend(nested.generated_config_maps);
        } else if path.is_file() {
            let relative = path
                .strip_prefix(root())
                .unwrap_or(&path)
                .display()
                .to_string();
            match parse_documents(&std::fs::read_to_string(&path).unwrap(), &relative) {
                Ok(documents) => out.manifests.extend(documents),
                Err(e) => problems.push(e),
            }
        } else {
            problems.push(format!("{origin} lists `{resource}`, which does not exist"));
        }
    }
    for generator in seq(&kustomization, "configMapGenerator") {
        let name = text(generator, "name").unwrap_or_default();
        let mut keys = BTreeMap::new();
        for entry in strings(generator, "files") {
            let (key, path) = entry.split_once('=').unwrap_or((&entry, &entry));
            let key = Path::new(key)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !dir.join(path).is_file() {
                problems.push(format!(
                    "{origin}: ConfigMap {name} file `{path}` does not exist"
                ));
            }
            keys.insert(key, String::new());
        }
        for literal in strings(generator, "literals") {
            let (key, value) = literal.split_once('=').unwrap_or((&literal, ""));
            keys.insert(key.to_owned(), value.to_owned());
        }
        out.generated_config_maps.insert(name, keys);
    }
    for patch in seq(&kustomization, "patches") {
        if let Some(path) = text(patch, "path")
            && !dir.join(&path).is_file()
        {
            problems.push(format!("{origin}: patch `{path}` does not exist"));
        }
    }
    for key in ["patchesStrategicMerge", "components"] {
        for path in strings(&kustomization, key) {
            if !dir.join(&path).exists() {
                problems.push(format!("{origin}: {key} `{path}` does not exist"));
            }
        }
    }
    out
}

fn kustomization_dirs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    yaml_files_under(&root().join("k8s"), &mut files);
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "kustomization.yaml"))
        .map(|f| f.parent().unwrap().to_path_buf())
        .collect()
}

fn base() -> Kustomized {
    let mut problems = Vec::new();
    let base = kustomize(&root().join("k8s/base"), &mut problems);
    report(problems);
    base
}

fn of_kind<'a>(manifests: &'a [Value], kind: &str) -> Vec<&'a Value> {
    manifests
        .iter()
        .filter(|m| text(m, "kind").as_deref() == Some(kind))
        .collect()
}

fn named<'a>(manifests: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    of_kind(manifests, kind)
        .into_iter()
        .find(|m| text(m, "metadata.name").as_deref() == Some(name))
}

fn labels_select(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn partitions_in(config_maps: &BTreeMap<String, BTreeMap<String, String>>) -> u64 {
    config_maps
        .values()
        .find_map(|keys| keys.get("PARTITIONS"))
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PARTITIONS)
}

fn mebibytes(quantity: &str) -> Option<u64> {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = quantity.strip_suffix(suffix) {
            return n.parse::<u64>().ok().map(|n| n * factor / (1 << 20));
        }
    }
    quantity.parse::<u64>().ok().map(|n| n / (1 << 20))
}

/// Checks one fleet Deployment; `config_maps` are the ConfigMaps it may reference by name
/// (generated names before kustomize adds the hash suffix, or rendered names after).
fn check_fleet_deployment(
    origin: &str,
    manifests: &[Value],
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    binary: &str,
    addr_var: &str,
    default_port: u16,
    problems: &mut Vec<String>,
) {
    let Some(deployment) = named(manifests, "Deployment", binary) else {
        problems.push(format!("{origin}: Deployment `{binary}` is missing"));
        return;
    };
    let at = format!("{origin}: Deployment {binary}");
    let pod = get(deployment, "spec.template.spec")
        .cloned()
        .unwrap_or(Value::Null);
    let selector = string_map(deployment, "spec.selector.matchLabels");
    let labels = string_map(deployment, "spec.template.metadata.labels");
    if !labels_select(&selector, &labels) {
        problems.push(format!(
            "{at}: selector {selector:?} does not match its pods {labels:?}"
        ));
    }

    // Graceful termination: preStop delay + the binary's drain must end before SIGKILL.
    let grace = int(&pod, "terminationGracePeriodSeconds");
    if grace != Some(20) {
        problems.push(format!(
            "{at}: terminationGracePeriodSeconds is {grace:?}, not 20"
        ));
    }

    // Pod-level security.
    if get(&pod, "securityContext.runAsNonRoot").and_then(Value::as_bool) != Some(true) {
        problems.push(format!(
            "{at}: pod securityContext.runAsNonRoot is not true"
        ));
    }
    let uid = int(&pod, "securityContext.runAsUser");
    if uid.is_none_or(|u| u == 0) {
        problems.push(format!("{at}: pod runAsUser is {uid:?}"));
    }
    if let (Some(uid), Some(image_uid)) = (uid, dockerfile_runtime_uid())
        && uid != i64::from(image_uid)
    {
        problems.push(format!(
            "{at}: runAsUser {uid} differs from the image's USER {image_uid}"
        ));
    }

    let containers = seq(&pod, "containers");
    let Some(container) = containers
        .iter()
        .find(|c| text(c, "name").as_deref() == Some(binary))
    else {
        problems.push(format!("{at}: no container named `{binary}`"));
        return;
    };
    let at = format!("{at}/{binary}");
    if get(container, "command").is_some() {
        problems.push(format!(
            "{at}: `command` replaces the image's init; use `args`"
        ));
    }
    if strings(container, "args").first().map(String::as_str) != Some(binary) {
        problems.push(format!("{at}: args do not start with `{binary}`"));
    }
    let prestop: i64 = strings(container, "lifecycle.preStop.exec.command")
        .iter()
        .filter_map(|a| a.parse::<i64>().ok())
        .sum();
    if let Some(grace) = grace
        && prestop + DRAIN_SECONDS > grace
    {
        problems.push(format!(
            "{at}: preStop {prestop}s + drain {DRAIN_SECONDS}s exceed the grace period {grace}s"
        ));
    }

    // Environment: only variables the binaries read; secrets from the Secret.
    let known = known_variables();
    let mut env = BTreeMap::new();
    for item in seq(container, "env") {
        let name = text(item, "name").unwrap_or_default();
        if !known.contains(&name) {
            problems.push(format!("{at}: env {name} is read by no binary"));
        }
        if SECRET_VARS.contains(&name.as_str()) && get(item, "value").is_some() {
            problems.push(format!(
                "{at}: secret {name} is a literal, not a secretKeyRef"
            ));
        }
        if let Some(reference) = get(item, "valueFrom.secretKeyRef") {
            let secret = text(reference, "name").unwrap_or_default();
            let key = text(reference, "key").unwrap_or_default();
            let has_key = named(manifests, "Secret", &secret).is_some_and(|s| {
                get(s, "stringData")
                    .and_then(|d| d.get(key.as_str()))
                    .is_some()
                    || get(s, "data").and_then(|d| d.get(key.as_str())).is_some()
            });
            if !has_key {
                problems.push(format!(
                    "{at}: env {name} refers to missing Secret key {secret}/{key}"
                ));
            }
        }
        env.insert(name, text(item, "value"));
    }
    for source in seq(container, "envFrom") {
        if let Some(name) = text(source, "configMapRef.name") {
            match config_maps.get(&name) {
                Some(keys) => {
                    for key in keys.keys() {
                        if !known.contains(key) {
                            problems.push(format!(
                                "{at}: ConfigMap {name} sets {key}, read by no binary"
                            ));
                        }
                        env.entry(key.clone())
                            .or_insert_with(|| keys.get(key).cloned());
                    }
                }
                None => problems.push(format!("{at}: envFrom ConfigMap {name} does not exist")),
            }
        }
        if get(source, "secretRef").is_some() {
            problems.push(format!(
                "{at}: envFrom a Secret hands every key to the pod; name them"
            ));
        }
    }
    let required: &[&str] = match binary {
        "ingress" => &["AMQP_URL", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN"],
        "worker" => &[
            "AMQP_URL",
            "REDIS_URL",
            "WHATSAPP_ACCESS_TOKEN",
            "TENANTS_FILE",
        ],
        _ => &["AMQP_URL", "REDIS_URL"],
    };
    for var in required {
        if !env.contains_key(*var) {
            problems.push(format!("{at}: {var} is not set"));
        }
    }

    // TENANTS_FILE must be a file a mounted ConfigMap provides.
    if binary != "ingress"
        && let Some(Some(tenants)) = env.get("TENANTS_FILE")
    {
        let provided = seq(container, "volumeMounts").iter().any(|mount| {
            let dir = text(mount, "mountPath").unwrap_or_default();
            let volume = text(mount, "name").unwrap_or_default();
            let Some(rest) = tenants.strip_prefix(&format!("{}/", dir.trim_end_matches('/')))
            else {
                return false;
            };
            seq(&pod, "volumes").iter().any(|v| {
                text(v, "name").as_deref() == Some(volume.as_str())
                    && text(v, "configMap.name")
                        .and_then(|cm| config_maps.get(&cm))
                        .is_some_and(|keys| keys.contains_key(rest))
            })
        });
        if !provided {
            problems.push(format!(
                "{at}: TENANTS_FILE {tenants} is not provided by a mounted ConfigMap"
            ));
        }
    }

    // Probes on the port the binary serves its admin endpoints on.
    let admin_port = env
        .get(addr_var)
        .and_then(|v| v.as_deref())
        .and_then(port_of_addr)
        .unwrap_or(default_port);
    let ports: BTreeMap<String, i64> = seq(container, "ports")
        .iter()
        .filter_map(|p| {
            Some((
                text(p, "name").unwrap_or_default(),
                int(p, "containerPort")?,
            ))
        })
        .collect();
    if !ports.values().any(|p| *p == i64::from(admin_port)) {
        problems.push(format!("{at}: no containerPort {admin_port} ({addr_var})"));
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let Some(http) = get(container, &format!("{probe}.httpGet")) else {
            problems.push(format!("{at}: no {probe} httpGet"));
            continue;
        };
        if text(http, "path").as_deref() != Some(path) {
            problems.push(format!("{at}: {probe} does not GET {path}"));
        }
        let port = match get(http, "port") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(name)) => ports.get(name).copied(),
            _ => None,
        };
        if port != Some(i64::from(admin_port)) {
            problems.push(format!(
                "{at}: {probe} targets port {port:?}, the binary serves {admin_port}"
            ));
        }
    }

    // Resources: both requests and limits, memory within the project's RSS targets.
    for section in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            if text(container, &format!("resources.{section}.{resource}")).is_none() {
                problems.push(format!("{at}: resources.{section}.{resource} is not set"));
            }
        }
    }
    let request = text(container, "resources.requests.memory").and_then(|q| mebibytes(&q));
    let limit = text(container, "resources.limits.memory").and_then(|q| mebibytes(&q));
    if let (Some(request), Some(limit)) = (request, limit)
        && limit < request
    {
        problems.push(format!(
            "{at}: memory limit {limit}Mi is below the request {request}Mi"
        ));
    }
    if let Some((_, target)) = MEMORY_TARGET_MIB.iter().find(|(b, _)| *b == binary)
        && request.is_none_or(|r| r > *target)
    {
        problems.push(format!(
            "{at}: memory request {request:?}Mi exceeds the {target} MB target"
        ));
    }

    // Container-level hardening.
    let security = get(container, "securityContext")
        .cloned()
        .unwrap_or(Value::Null);
    for (key, want) in [
        ("allowPrivilegeEscalation", false),
        ("readOnlyRootFilesystem", true),
    ] {
        if get(&security, key).and_then(Value::as_bool) != Some(want) {
            problems.push(format!("{at}: securityContext.{key} is not {want}"));
        }
    }
    if !strings(&security, "capabilities.drop")
        .iter()
        .any(|c| c == "ALL")
    {
        problems.push(format!("{at}: capabilities do not drop ALL"));
    }
}

fn check_manifests(
    origin: &str,
    manifests: &[Value],
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    problems: &mut Vec<String>,
) {
    for &(binary, addr_var, port) in FLEET {
        check_fleet_deployment(
            origin,
            manifests,
            config_maps,
            binary,
            addr_var,
            port,
            problems,
        );
    }
    let deployments = of_kind(manifests, "Deployment");
    let pod_labels = |d: &Value| string_map(d, "spec.template.metadata.labels");

    // Every fleet component has a PDB, and every PDB selects a Deployment's pods.
    for pdb in of_kind(manifests, "PodDisruptionBudget") {
        let name = text(pdb, "metadata.name").unwrap_or_default();
        let selector = string_map(pdb, "spec.selector.matchLabels");
        if !deployments
            .iter()
            .any(|d| labels_select(&selector, &pod_labels(d)))
        {
            problems.push(format!("{origin}: PDB {name} selects no Deployment's pods"));
        }
        if get(pdb, "spec.minAvailable").is_none() && get(pdb, "spec.maxUnavailable").is_none() {
            problems.push(format!("{origin}: PDB {name} has no budget"));
        }
    }
    for &(binary, _, _) in FLEET {
        let Some(deployment) = named(manifests, "Deployment", binary) else {
            continue;
        };
        let covered = of_kind(manifests, "PodDisruptionBudget").iter().any(|pdb| {
            labels_select(
                &string_map(pdb, "spec.selector.matchLabels"),
                &pod_labels(deployment),
            )
        });
        if !covered {
            problems.push(format!(
                "{origin}: no PodDisruptionBudget covers `{binary}`"
            ));
        }
    }

    // Services select pods and target ports those pods declare.
    for service in of_kind(manifests, "Service") {
        let name = text(service, "metadata.name").unwrap_or_default();
        let selector = string_map(service, "spec.selector");
        let Some(target) = deployments
            .iter()
            .find(|d| labels_select(&selector, &pod_labels(d)))
        else {
            problems.push(format!(
                "{origin}: Service {name} selects no Deployment's pods"
            ));
            continue;
        };
        let declared: Vec<(String, i64)> = seq(target, "spec.template.spec.containers")
            .iter()
            .flat_map(|c| seq(c, "ports"))
            .filter_map(|p| {
                Some((
                    text(p, "name").unwrap_or_default(),
                    int(p, "containerPort")?,
                ))
            })
            .collect();
        for port in seq(service, "spec.ports") {
            let ok = match get(port, "targetPort").or_else(|| get(port, "port")) {
                Some(Value::String(n)) => declared.iter().any(|(name, _)| name == n),
                Some(Value::Number(n)) => declared.iter().any(|(_, p)| Some(*p) == n.as_i64()),
                _ => false,
            };
            if !ok {
                problems.push(format!(
                    "{origin}: Service {name} targets a port its pods do not declare"
                ));
            }
        }
    }
    for &(binary, _, _) in FLEET {
        if let Some(deployment) = named(manifests, "Deployment", binary) {
            let scraped = of_kind(manifests, "Service")
                .iter()
                .any(|s| labels_select(&string_map(s, "spec.selector"), &pod_labels(deployment)));
            if !scraped {
                problems.push(format!(
                    "{origin}: no Service reaches `{binary}` (metrics scraping)"
                ));
            }
        }
    }
    let ingress_service = of_kind(manifests, "Service").into_iter().any(|s| {
        named(manifests, "Deployment", "ingress")
            .is_some_and(|d| labels_select(&string_map(s, "spec.selector"), &pod_labels(d)))
            && get(s, "spec.clusterIP").and_then(Value::as_str) != Some("None")
    });
    if !ingress_service {
        problems.push(format!("{origin}: no (non-headless) Service for ingress"));
    }

    // Worker autoscaling: KEDA on partition backlog, or a plain HPA; at most PARTITIONS.
    let partitions = partitions_in(config_maps);
    let scaled = of_kind(manifests, "ScaledObject");
    let hpas = of_kind(manifests, "HorizontalPodAutoscaler");
    let targets_worker = |m: &Value| {
        text(m, "spec.scaleTargetRef.name").as_deref() == Some("worker")
            && text(m, "spec.scaleTargetRef.kind").is_none_or(|k| k == "Deployment")
    };
    let worker_scalers = scaled.iter().filter(|m| targets_worker(m)).count()
        + hpas.iter().filter(|m| targets_worker(m)).count();
    if worker_scalers != 1 {
        problems.push(format!(
            "{origin}: {worker_scalers} autoscalers target the worker; want exactly 1"
        ));
    }
    for object in &scaled {
        let name = text(object, "metadata.name").unwrap_or_default();
        if !targets_worker(object) {
            problems.push(format!(
                "{origin}: ScaledObject {name} does not target Deployment worker"
            ));
        }
        let max = int(object, "spec.maxReplicaCount");
        if max.is_none_or(|m| m < 1 || m as u64 > partitions) {
            problems.push(format!("{origin}: ScaledObject maxReplicaCount {max:?} is not within 1..={partitions} (PARTITIONS)"));
        }
        let min = int(object, "spec.minReplicaCount").unwrap_or(0);
        if min < 1 || max.is_some_and(|m| min > m) {
            problems.push(format!("{origin}: ScaledObject minReplicaCount {min} must be 1..=max (a worker must always own the partitions)"));
        }
        let triggers = seq(object, "spec.triggers");
        let rabbit = triggers
            .iter()
            .find(|t| text(t, "type").as_deref() == Some("rabbitmq"));
        match rabbit {
            None => problems.push(format!(
                "{origin}: ScaledObject {name} has no rabbitmq trigger"
            )),
            Some(trigger) => {
                let queue = text(trigger, "metadata.queueName").unwrap_or_default();
                let regex = text(trigger, "metadata.useRegex").as_deref() == Some("true");
                // Total depth of conv.p0 … conv.p{N-1}: a regex over the partition queues, summed.
                if !(regex && queue.starts_with("^conv\\.p") && queue.ends_with('$')) {
                    problems.push(format!("{origin}: rabbitmq trigger does not cover conv.p0..conv.p{{N-1}} (queueName `{queue}`, useRegex {regex})"));
                }
                if text(trigger, "metadata.operation").is_some_and(|op| op != "sum") {
                    problems.push(format!(
                        "{origin}: rabbitmq trigger does not sum the partitions"
                    ));
                }
                if regex && text(trigger, "metadata.protocol").as_deref() != Some("http") {
                    problems.push(format!("{origin}: queue regex needs protocol http"));
                }
                if text(trigger, "metadata.mode").as_deref() != Some("QueueLength") {
                    problems.push(format!("{origin}: rabbitmq trigger is not on QueueLength"));
                }
                let auth = text(trigger, "authenticationRef.name").unwrap_or_default();
                match named(manifests, "TriggerAuthentication", &auth) {
                    None => problems.push(format!(
                        "{origin}: TriggerAuthentication `{auth}` is missing"
                    )),
                    Some(auth) => {
                        for reference in seq(auth, "spec.secretTargetRef") {
                            let secret = text(reference, "name").unwrap_or_default();
                            let key = text(reference, "key").unwrap_or_default();
                            let found = named(manifests, "Secret", &secret).is_some_and(|s| {
                                get(s, "stringData")
                                    .and_then(|d| d.get(key.as_str()))
                                    .is_some()
                                    || get(s, "data").and_then(|d| d.get(key.as_str())).is_some()
                            });
                            if !found {
                                problems.push(format!(
                                    "{origin}: TriggerAuthentication needs Secret {secret}/{key}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        if !triggers
            .iter()
            .any(|t| text(t, "type").as_deref() == Some("cpu"))
        {
            problems.push(format!(
                "{origin}: ScaledObject {name} has no CPU trigger to fall back on"
            ));
        }
    }
    for hpa in &hpas {
        let max = int(hpa, "spec.maxReplicas");
        if targets_worker(hpa) && max.is_none_or(|m| m as u64 > partitions) {
            problems.push(format!(
                "{origin}: worker HPA maxReplicas {max:?} exceeds PARTITIONS {partitions}"
            ));
        }
    }
    if worker_scalers > 0
        && let Some(worker) = named(manifests, "Deployment", "worker")
        && get(worker, "spec.replicas").is_some_and(|r| !r.is_null())
        && origin.contains("base")
    {
        problems.push(format!(
            "{origin}: autoscaled worker Deployment sets spec.replicas; every apply would reset it"
        ));
    }

    // The namespace refuses privileged pods.
    for namespace in of_kind(manifests, "Namespace") {
        let labels = string_map(namespace, "metadata.labels");
        if labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str)
            != Some("restricted")
        {
            problems.push(format!(
                "{origin}: Namespace does not enforce the restricted Pod Security Standard"
            ));
        }
    }
}

#[test]
fn kustomizations_reference_only_files_that_exist() {
    let dirs = kustomization_dirs();
    assert!(
        dirs.iter().any(|d| d.ends_with("k8s/base")),
        "k8s/base/kustomization.yaml is missing"
    );
    let mut problems = Vec::new();
    for dir in dirs {
        kustomize(&dir, &mut problems);
    }
    report(problems);
}

#[test]
fn kubernetes_tenants_file_is_config_tenants_toml() {
    assert_eq!(
        read("k8s/base/tenants.toml"),
        read("config/tenants.toml"),
        "k8s/base/tenants.toml must be a copy of config/tenants.toml (cp config/tenants.toml k8s/base/)"
    );
}

#[test]
fn kubernetes_base_is_probed_sized_hardened_and_autoscaled() {
    let base = base();
    let mut problems = Vec::new();
    for kind in [
        "Namespace",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ScaledObject",
    ] {
        if of_kind(&base.manifests, kind).is_empty() {
            problems.push(format!("k8s/base has no {kind}"));
        }
    }
    let generated = &base.generated_config_maps;
    if !generated
        .values()
        .any(|keys| keys.contains_key("tenants.toml"))
    {
        problems.push("no ConfigMap generated from tenants.toml".into());
    }
    // The Secret template carries placeholders only.
    match named(&base.manifests, "Secret", "booking-secrets") {
        None => problems.push("Secret booking-secrets is missing".into()),
        Some(secret) => {
            let data = string_map(secret, "stringData");
            for var in SECRET_VARS {
                match data.get(*var) {
                    None => problems.push(format!("Secret template lacks {var}")),
                    Some(value) if !value.contains("REPLACE_ME") => problems.push(format!(
                        "Secret template {var} is not a REPLACE_ME placeholder"
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    check_manifests("k8s/base", &base.manifests, generated, &mut problems);
    report(problems);
}

#[test]
fn kubernetes_overlays_keep_one_worker_autoscaler_within_partitions() {
    let mut problems = Vec::new();
    for dir in kustomization_dirs() {
        if dir.ends_with("k8s/base") {
            continue;
        }
        let origin = dir.strip_prefix(root()).unwrap().display().to_string();
        let overlay = kustomize(&dir, &mut problems);
        let partitions = partitions_in(&overlay.generated_config_maps);
        for hpa in of_kind(&overlay.manifests, "HorizontalPodAutoscaler") {
            if text(hpa, "spec.scaleTargetRef.name").as_deref() == Some("worker") {
                let max = int(hpa, "spec.maxReplicas");
                if max.is_none_or(|m| m as u64 > partitions) {
                    problems.push(format!(
                        "{origin}: worker HPA maxReplicas {max:?} exceeds PARTITIONS"
                    ));
                }
                let has_cpu = seq(hpa, "spec.metrics")
                    .iter()
                    .any(|m| text(m, "resource.name").as_deref() == Some("cpu"));
                if !has_cpu {
                    problems.push(format!("{origin}: worker HPA does not scale on CPU"));
                }
            }
        }
    }
    report(problems);
}

/// With kubectl present, render every kustomization exactly as a cluster would receive it and
/// check the result (patches applied, generated names hashed). Skipped without kubectl.
#[test]
fn rendered_kustomizations_pass_the_same_checks_when_kubectl_is_available() {
    let Ok(version) = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    else {
        eprintln!("kubectl not installed; rendered manifests not checked");
        return;
    };
    if !version.status.success() {
        eprintln!("kubectl unusable; rendered manifests not checked");
        return;
    }
    let mut problems = Vec::new();
    for dir in kustomization_dirs() {
        let origin = format!("{} (rendered)", dir.strip_prefix(root()).unwrap().display());
        let output = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&dir)
            .output()
            .expect("running kubectl kustomize");
        if !output.status.success() {
            problems.push(format!(
                "{origin}: kubectl kustomize failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
            continue;
        }
        let manifests = match parse_documents(&String::from_utf8_lossy(&output.stdout), &origin) {
            Ok(m) => m,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let config_maps: BTreeMap<String, BTreeMap<String, String>> =
            of_kind(&manifests, "ConfigMap")
                .into_iter()
                .map(|cm| {
                    (
                        text(cm, "metadata.name").unwrap_or_default(),
                        string_map(cm, "data"),
                    )
                })
                .collect();
        let namespaces: BTreeSet<String> = manifests
            .iter()
            .filter(|m| text(m, "kind").as_deref() != Some("Namespace"))
            .filter_map(|m| text(m, "metadata.namespace"))
            .collect();
        if namespaces.len() != 1 {
            problems.push(format!(
                "{origin}: objects land in namespaces {namespaces:?}"
            ));
        }
        check_manifests(&origin, &manifests, &config_maps, &mut problems);
    }
    report(problems);
}
