//! `docker-compose.yml`, `collector-config.yaml` and `prometheus.yml` fit together: the
//! services, their order of start-up, a traces pipeline and a metrics pipeline whose every
//! part is defined, and Prometheus scraping the collector's metrics endpoint; the demo is one
//! image, built once, from a Dockerfile with a dependency layer and a non-root user, and the
//! images it runs with are pinned. (CI also runs `docker-compose config -q`.)

use yaml_rust2::{Yaml, YamlLoader};

fn load(file: &str) -> Yaml {
    let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .unwrap_or_else(|| panic!("not a list: {list:?}"))
        .iter()
        .map(|y| y.as_str().unwrap().to_owned())
        .collect()
}

/// The collector's pipeline `name`, checked: every part it uses is defined, OTLP in, the
/// memory limiter first, batching, the debug exporter. Returns its exporters.
fn checked_pipeline(config: &Yaml, name: &str) -> Vec<String> {
    let pipeline = &config["service"]["pipelines"][name];
    assert!(!pipeline.is_badvalue(), "a {name} pipeline");
    for part in ["receivers", "processors", "exporters"] {
        let used = strings(&pipeline[part]);
        assert!(!used.is_empty(), "the {name} pipeline has {part}");
        for used in used {
            assert!(
                !config[part][used.as_str()].is_badvalue(),
                "{name}: {part}: {used} is used but not defined"
            );
        }
    }
    assert!(strings(&pipeline["receivers"]).contains(&"otlp".to_owned()));
    let processors = strings(&pipeline["processors"]);
    assert_eq!(
        processors.first().map(String::as_str),
        Some("memory_limiter"),
        "{name}: memory limiter first"
    );
    assert!(processors.contains(&"batch".to_owned()), "{name}: batch");
    let exporters = strings(&pipeline["exporters"]);
    assert!(exporters.contains(&"debug".to_owned()), "{name}: debug");
    exporters
}

#[test]
fn collector_wires_a_traces_pipeline() {
    let config = load("collector-config.yaml");
    let exporters = checked_pipeline(&config, "traces");
    let to_jaeger = exporters
        .iter()
        .find(|e| config["exporters"][e.as_str()]["endpoint"].as_str() == Some("jaeger:4317"))
        .expect("an exporter sends to Jaeger's OTLP port");
    assert!(to_jaeger.starts_with("otlp"));
    let protocols = &config["receivers"]["otlp"]["protocols"];
    assert_eq!(protocols["grpc"]["endpoint"].as_str(), Some("0.0.0.0:4317"));
    assert_eq!(protocols["http"]["endpoint"].as_str(), Some("0.0.0.0:4318"));
    for extension in strings(&config["service"]["extensions"]) {
        assert!(!config["extensions"][extension.as_str()].is_badvalue());
    }
}

#[test]
fn collector_wires_a_metrics_pipeline_to_prometheus() {
    let config = load("collector-config.yaml");
    let exporters = checked_pipeline(&config, "metrics");
    assert!(
        exporters.contains(&"prometheus".to_owned()),
        "{exporters:?}"
    );
    assert_eq!(
        config["exporters"]["prometheus"]["endpoint"].as_str(),
        Some("0.0.0.0:8889")
    );
}

#[test]
fn prometheus_scrapes_the_collector_and_its_ui_is_published() {
    let compose = load("docker-compose.yml");
    let services = &compose["services"];
    let prometheus = &services["prometheus"];
    assert!(
        prometheus["image"]
            .as_str()
            .unwrap()
            .starts_with("prom/prometheus:")
    );
    assert!(
        strings(&prometheus["ports"])
            .iter()
            .any(|p| p.starts_with("9090:"))
    );
    assert_eq!(
        prometheus["depends_on"]["otel-collector"]["condition"].as_str(),
        Some("service_started")
    );
    // It reads the prometheus.yml of this repository...
    let volumes = strings(&prometheus["volumes"]);
    let mount = volumes
        .iter()
        .find(|v| v.starts_with("./prometheus.yml:"))
        .expect("prometheus.yml is mounted");
    let inside = mount.split(':').nth(1).unwrap();
    assert!(
        strings(&prometheus["command"]).contains(&format!("--config.file={inside}")),
        "prometheus reads {inside}"
    );
    // ...which scrapes the collector's Prometheus exporter.
    let config = load("prometheus.yml");
    let targets: Vec<String> = config["scrape_configs"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|job| job["static_configs"].as_vec().unwrap().iter())
        .flat_map(|c| strings(&c["targets"]))
        .collect();
    assert!(
        targets.contains(&"otel-collector:8889".to_owned()),
        "{targets:?}"
    );
    for demo in ["demo-server", "demo-client"] {
        let interval = &services[demo]["environment"]["OTEL_METRIC_EXPORT_INTERVAL"];
        assert!(
            interval
                .as_str()
                .is_some_and(|ms| ms.parse::<u64>().is_ok()),
            "{demo} exports metrics every few seconds: {interval:?}"
        );
    }
}

#[test]
fn compose_starts_things_in_order_and_points_them_at_the_collector() {
    let compose = load("docker-compose.yml");
    let services = &compose["services"];
    for name in ["jaeger", "otel-collector", "demo-server", "demo-client"] {
        assert!(!services[name].is_badvalue(), "service {name}");
    }
    assert!(
        services["jaeger"]["image"]
            .as_str()
            .unwrap()
            .starts_with("jaegertracing/jaeger:2.")
    );
    assert!(
        strings(&services["jaeger"]["ports"])
            .iter()
            .any(|p| p.starts_with("16686:"))
    );

    let condition = |service: &str, on: &str| {
        services[service]["depends_on"][on]["condition"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        condition("otel-collector", "jaeger").as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        condition("demo-server", "otel-collector").as_deref(),
        Some("service_started")
    );
    assert_eq!(
        condition("demo-client", "demo-server").as_deref(),
        Some("service_healthy")
    );
    for healthy in ["jaeger", "demo-server"] {
        assert!(
            !services[healthy]["healthcheck"]["test"].is_badvalue(),
            "{healthy} has a health check"
        );
    }

    // The collector reads the config file this repository has.
    let volumes = strings(&services["otel-collector"]["volumes"]);
    let mount = volumes
        .iter()
        .find(|v| v.starts_with("./collector-config.yaml:"))
        .unwrap();
    let inside = mount.split(':').nth(1).unwrap();
    let command = strings(&services["otel-collector"]["command"]);
    assert!(
        command.contains(&format!("--config={inside}")),
        "{command:?} reads {inside}"
    );

    for demo in ["demo-server", "demo-client"] {
        let env = &services[demo]["environment"];
        assert_eq!(
            env["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str(),
            Some("http://otel-collector:4317")
        );
    }
    let client = strings(&services["demo-client"]["command"]);
    assert!(
        client.contains(&"--loop".to_owned()),
        "the client keeps traces coming"
    );
}

#[test]
fn the_demo_is_one_image_built_once() {
    let compose = load("docker-compose.yml");
    let services = &compose["services"];
    let server = &services["demo-server"];
    let client = &services["demo-client"];
    assert_eq!(
        server["build"]["dockerfile"].as_str(),
        Some("demo/Dockerfile")
    );
    assert_eq!(server["build"]["context"].as_str(), Some("."));
    let image = server["image"].as_str().expect("the built image is named");
    assert_eq!(
        client["image"].as_str(),
        Some(image),
        "the client runs it too"
    );
    assert!(client["build"].is_badvalue(), "and does not build it again");
    assert_eq!(client["pull_policy"].as_str(), Some("never"));
    // The client starts after the server, whose start needed the image.
    assert!(!client["depends_on"]["demo-server"].is_badvalue());
    assert_eq!(strings(&server["command"])[0], "server");
    assert_eq!(strings(&client["command"])[0], "client");
    // The health check asks grpc.health.v1.Health (`client --probe`), not the echo.
    let check = strings(&server["healthcheck"]["test"]);
    assert_eq!(check[..3], ["CMD", "client", "--probe"]);
}

#[test]
fn every_image_is_pinned() {
    let compose = load("docker-compose.yml");
    let services = compose["services"].as_hash().unwrap();
    for (name, service) in services {
        let Some(image) = service["image"].as_str() else {
            continue;
        };
        if image.starts_with("otel-stats-demo:") {
            continue; // built here
        }
        let (_, tag) = image
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name:?}: {image} has no tag"));
        assert!(
            tag.split('.').count() == 3
                && tag
                    .trim_start_matches('v')
                    .split('.')
                    .all(|n| n.parse::<u32>().is_ok()),
            "{name:?}: {image} is not pinned to a release"
        );
    }
    let jaeger = services[&Yaml::from_str("jaeger")]["image"]
        .as_str()
        .unwrap();
    assert!(
        jaeger.starts_with("jaegertracing/jaeger:2."),
        "Jaeger v2: {jaeger}"
    );
}

#[test]
fn the_dockerfile_caches_dependencies_and_runs_unprivileged() {
    let path = format!("{}/Dockerfile", env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let position = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {path}"))
    };
    // The lock file and a dependency build come before the sources.
    let lock = position("COPY Cargo.toml Cargo.lock");
    let sources = position("COPY . .");
    let first_build = lines
        .iter()
        .position(|l| l.contains("cargo build --release --locked"))
        .unwrap();
    assert!(lock < first_build && first_build < sources, "{lines:#?}");
    // Both binaries, run as a user that is not root.
    let copy = lines[position("COPY --from=build")];
    assert!(
        copy.contains("/server") && copy.contains("/client"),
        "{copy}"
    );
    let user = lines[position("USER ")];
    assert!(!user.ends_with(" root") && !user.ends_with(" 0"), "{user}");
    assert!(
        position("USER ") > position("FROM debian"),
        "USER in the runtime stage"
    );

    // Every `target/` stays out of the build context.
    let ignore =
        std::fs::read_to_string(format!("{}/../.dockerignore", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "**/target"), "{ignore}");
}
