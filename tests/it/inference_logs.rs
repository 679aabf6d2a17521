//! `POST /v1/inference-logs` over real HTTP, on SQLite and PostgreSQL: KServe's and Seldon's
//! logger events (samples from their repositories, cited at each) become records of the
//! inference service's dataset, requests and responses side by side, ids kept.

use std::time::Duration;

use driftd::profile::DatasetProfile;
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::compressed::gzip;
use crate::helpers::{BOTH, Db, TestApp, fresh_database, spawn_app, test_config};

/// Posts one binary-mode event: `headers` as `ce-*` headers, `data` as the body.
async fn event(app: &TestApp, path: &str, headers: &[(&str, &str)], data: &str) -> (u16, Json) {
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(data.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The open window of `dataset`, once its rows reach `rows`.
async fn stored(url: &str, dataset: &str, rows: u64) -> DatasetProfile {
    let store = driftd::store::Store::connect(&driftd::config::Secret::new(url))
        .await
        .unwrap();
    for _ in 0..100 {
        if let Some(p) = store.recent_windows(dataset, 0).await.unwrap()
            && p.rows >= rows
        {
            store.close().await;
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{dataset} never reached {rows} stored rows");
}

fn feature_count(profile: &DatasetProfile, name: &str) -> u64 {
    profile
        .features
        .get(name)
        .unwrap_or_else(|| panic!("no feature {name:?} in {:?}", names(profile)))
        .count()
}

fn names(profile: &DatasetProfile) -> Vec<&str> {
    profile.features.keys().map(String::as_str).collect()
}

// kserve/kserve docs/samples/logger/basic/README.md: the message dumper's request and response.
const KSERVE_ID: &str = "0009174a-24a8-4603-b098-09c8799950e9";
const IRIS_REQUEST: &str = r#"{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}"#;
const IRIS_RESPONSE: &str = r#"{"predictions": [1, 1]}"#;

fn kserve(kind: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("ce-specversion", "1.0"),
        ("ce-type", kind),
        ("ce-source", "http://localhost:9081/"),
        ("ce-id", KSERVE_ID),
        ("ce-inferenceservicename", "sklearn-iris"),
        ("ce-namespace", "default"),
        ("ce-endpoint", ""),
        (
            "traceparent",
            "00-90bdf848647d50283394155d2df58f19-84dacdfdf07cadfc-00",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_and_seldon_events_become_records_of_their_service() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let mut config = test_config(&url);
        // The 100 back-to-back events below measure how fast each is answered, not how fast
        // a busy test machine profiles them: room for all of them in the queue.
        config.queue_capacity = 256;
        let app = spawn_app(config).await;
        let path = "/v1/inference-logs";

        let (status, body) = event(
            &app,
            path,
            &kserve("org.kubeflow.serving.inference.request"),
            IRIS_REQUEST,
        )
        .await;
        assert_eq!(status, 202, "{db:?}: {body}");
        assert_eq!(
            body,
            json!({"dataset": "sklearn-iris", "event": "request", "accepted": 2, "rejected": 0})
        );
        let (status, body) = event(
            &app,
            path,
            &kserve("org.kubeflow.serving.inference.response"),
            IRIS_RESPONSE,
        )
        .await;
        assert_eq!(
            (status, &body["event"]),
            (202, &json!("response")),
            "{body}"
        );
        let iris = stored(&url, "sklearn-iris", 4).await;
        assert_eq!(iris.rows, 4, "{db:?}");
        for name in ["input_0", "input_3"] {
            assert_eq!(feature_count(&iris, name), 2, "{db:?}: {name}");
        }
        assert_eq!(feature_count(&iris, "prediction"), 2);
        // Request and response rows carry the same ids, for a later join.
        assert_eq!(feature_count(&iris, "_id"), 4);
        assert_eq!(iris.features["_id"].distinct(), 2);
        assert_eq!(
            iris.labels.get("namespace").map(String::as_str),
            Some("default")
        );

        // SeldonIO/seldon-core components/seldon-request-logger/testing/test.sh (2z4): the
        // income classifier's request and response; ?dataset= overrides the service name.
        let seldon = |kind| {
            vec![
                ("Ce-Inferenceservicename", "income"),
                ("Ce-Type", kind),
                ("Ce-Namespace", "seldon"),
                ("Ce-Endpoint", "default"),
                ("Ce-Requestid", "2z4"),
            ]
        };
        let request = r#"{"data":{"names":["Age","Workclass","Education","Marital Status","Occupation","Relationship","Race","Sex","Capital Gain","Capital Loss","Hours per week","Country"],"ndarray":[[53,4,0,2,8,4,2,0,0,0,60,9]]}}"#;
        let response = r#"{"data":{"names":["t:0","t:1"],"ndarray":[[0.8538818809164035,0.14611811908359656]]},"meta":{"requestPath":{"income-container":"seldonio\/sklearnserver:1.7.0"}}}"#;
        let (status, body) = event(
            &app,
            path,
            &seldon("io.seldon.serving.inference.request"),
            request,
        )
        .await;
        assert_eq!(
            (status, &body["dataset"]),
            (202, &json!("income")),
            "{body}"
        );
        let (status, body) = event(
            &app,
            &format!("{path}?dataset=income-v2"),
            &seldon("io.seldon.serving.inference.response"),
            response,
        )
        .await;
        assert_eq!(
            (status, &body["dataset"]),
            (202, &json!("income-v2")),
            "{body}"
        );
        let income = stored(&url, "income", 1).await;
        assert_eq!(feature_count(&income, "Hours per week"), 1);
        let predictions = stored(&url, "income-v2", 1).await;
        assert_eq!(
            names(&predictions),
            ["_id", "prediction.t:0", "prediction.t:1"],
            "{db:?}"
        );

        // Open Inference Protocol V2 in structured mode, gzip-compressed.
        // SeldonIO/seldon-core components/seldon-request-logger/testing/v2_iris_batch.txt
        let v2 = json!({
            "specversion": "1.0", "type": "org.kubeflow.serving.inference.request",
            "source": "http://localhost:9081/", "id": "v2-1", "inferenceservicename": "iris-v2",
            "datacontenttype": "application/json",
            "data": {"model_name": "iris", "model_version": "1", "inputs": [
                {"name": "Sepal length", "shape": [2, 1], "datatype": "FP32", "data": [6.8, 6.1]},
                {"name": "Sepal width", "shape": [2, 1], "datatype": "FP32", "data": [2.8, 3.4]}]}
        });
        let r = app
            .client
            .post(app.url(path))
            .header("content-type", "application/cloudevents+json")
            .header("content-encoding", "gzip")
            .body(gzip(v2.to_string().as_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(r.json::<Json>().await.unwrap()["accepted"], 2);
        let iris_v2 = stored(&url, "iris-v2", 2).await;
        assert_eq!(feature_count(&iris_v2, "Sepal width"), 2, "{db:?}");

        // A full KServe logger queue (100 events) delivered back to back: each answered at once.
        let mut took = Vec::new();
        for _ in 0..100 {
            let started = std::time::Instant::now();
            let (status, _) = event(
                &app,
                path,
                &kserve("org.kubeflow.serving.inference.request"),
                IRIS_REQUEST,
            )
            .await;
            took.push(started.elapsed());
            assert_eq!(status, 202);
        }
        took.sort();
        eprintln!(
            "{db:?}: 100 events, median {:?}, slowest {:?}",
            took[50], took[99]
        );
        assert!(
            took[99] < Duration::from_secs(2),
            "{db:?}: slowest {:?}",
            took[99]
        );
        stored(&url, "sklearn-iris", 204).await;

        let text = app.metrics().await;
        for line in [
            "driftd_records_total{dataset=\"sklearn-iris\",stage=\"online\"} 204",
            "driftd_records_total{dataset=\"income\",stage=\"online\"} 1",
            "driftd_records_total{dataset=\"iris-v2\",stage=\"online\"} 2",
        ] {
            assert!(text.contains(line), "{db:?}: {line} missing from\n{text}");
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_refused_precisely_and_counted() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        let path = "/v1/inference-logs";
        let request = kserve("org.kubeflow.serving.inference.request");

        // SeldonIO/seldon-core components/seldon-request-logger/testing/test.sh: the outlier
        // detector's events are not inference logs.
        let outlier = [
            ("Ce-Type", "org.kubeflow.serving.inference.outlier"),
            ("Ce-Inferenceservicename", "iris"),
            ("Ce-id", "8h"),
        ];
        let (status, body) =
            event(&app, path, &outlier, r#"{"data": {"is_outlier": [1, 1]}}"#).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "unknown CloudEvents type \"org.kubeflow.serving.inference.outlier\"; driftd takes \
             org.kubeflow.serving.inference.request, org.kubeflow.serving.inference.response, \
             io.seldon.serving.inference.request, io.seldon.serving.inference.response",
            "{db:?}"
        );
        let (status, body) = event(&app, path, &[], IRIS_REQUEST).await;
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("not a CloudEvent"),
            "{body}"
        );
        let nameless = [
            ("ce-type", "org.kubeflow.serving.inference.request"),
            ("ce-id", "x"),
        ];
        let (status, body) = event(&app, path, &nameless, IRIS_REQUEST).await;
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("add ?dataset=NAME"),
            "{body}"
        );
        let (status, body) = event(
            &app,
            &format!("{path}?dataset=bad%20name"),
            &nameless,
            IRIS_REQUEST,
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("dataset name \"bad name\""),
            "{body}"
        );
        let (status, body) = event(&app, path, &request, "{\"instances\": [1,\n ]}").await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "invalid JSON at line 2, column 2: expected value"
        );
        let shapeless = r#"{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}"#;
        let (status, body) = event(&app, path, &request, shapeless).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "inputs[0] \"x\": shape [2, 2] needs 4 values, data has 3"
        );

        // A bad row is refused alone: which row, which tensor, why.
        let typed = r#"{"inputs": [{"name": "age", "shape": [3], "datatype": "INT64", "data": [31, "n/a", 40]},
                                   {"name": "country", "shape": [3], "datatype": "BYTES", "data": ["DE", "FR", 7]}]}"#;
        let (status, body) = event(&app, path, &request, typed).await;
        assert_eq!(status, 202);
        assert_eq!(
            body,
            json!({"dataset": "sklearn-iris", "event": "request", "accepted": 1, "rejected": 2,
                   "errors": [
                       {"index": 1, "reason": "inputs \"age\": expected numbers for its datatype, found a string"},
                       {"index": 2, "reason": "inputs \"country\": expected strings for its datatype, found a number"}]}),
            "{db:?}"
        );
        let r = app
            .client
            .post(app.url(path))
            .header("content-type", "application/cloudevents-batch+json")
            .body("[]")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);

        let text = app.metrics().await;
        for line in [
            "driftd_ingest_dropped_total{reason=\"invalid_request\"} 6",
            "driftd_ingest_dropped_total{reason=\"invalid_record\"} 2",
            "driftd_ingest_dropped_total{reason=\"unsupported_media_type\"} 1",
            "driftd_records_rejected_total{dataset=\"sklearn-iris\",stage=\"online\"} 2",
        ] {
            assert!(text.contains(line), "{db:?}: {line} missing from\n{text}");
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_logs_need_the_online_scope() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.file_tokens = crate::auth::tokens();
    let app = spawn_app(config).await;
    let post = |token: Option<&'static str>| {
        let mut r = app
            .client
            .post(app.url("/v1/inference-logs"))
            .header("ce-type", "org.kubeflow.serving.inference.request")
            .header("ce-id", "a")
            .header("ce-inferenceservicename", "iris")
            .body(IRIS_REQUEST);
        if let Some(token) = token {
            r = r.bearer_auth(token);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    let r = post(Some(crate::auth::PIPELINE)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("lacks the online scope"));
    assert_eq!(
        post(Some(crate::auth::SIDECAR)).await.unwrap().status(),
        202
    );
    // A logger given only a URL: the token as the URL's password, sent as Basic (what Go's
    // HTTP client, KServe's and Seldon's loggers, do with user info).
    let with_userinfo = format!(
        "http://kserve:{}@{}/v1/inference-logs",
        crate::auth::SIDECAR,
        app.address
    );
    let r = app
        .client
        .post(&with_userinfo)
        .header("ce-type", "org.kubeflow.serving.inference.request")
        .header("ce-id", "b")
        .header("ce-inferenceservicename", "iris")
        .body(IRIS_REQUEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    app.stop().await;
}

/// Rows of bare numbers take the names the dataset's rule file gives (`inference:`), on the
/// request's and the response's side; a dataset without them keeps `input_<j>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positional_values_are_named_by_the_datasets_rules() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let rules = dir.path().join("iris.yaml");
        std::fs::write(
            &rules,
            "dataset: sklearn-iris\ninference:\n  inputs: [sepal_length, sepal_width, petal_length, petal_width]\n  outputs: [species]\n",
        )
        .unwrap();
        let mut config = test_config(&url);
        config.rules = Some(rules);
        let app = spawn_app(config).await;
        for (kind, data) in [
            ("org.kubeflow.serving.inference.request", IRIS_REQUEST),
            (
                "org.kubeflow.serving.inference.response",
                r#"{"predictions": [[1], [1]]}"#,
            ),
        ] {
            let (status, body) = event(&app, "/v1/inference-logs", &kserve(kind), data).await;
            assert_eq!(status, 202, "{db:?}: {body}");
        }
        let (status, body) = event(
            &app,
            "/v1/inference-logs?dataset=unnamed",
            &kserve("org.kubeflow.serving.inference.request"),
            IRIS_REQUEST,
        )
        .await;
        assert_eq!(status, 202, "{db:?}: {body}");
        let profile = stored(&url, "sklearn-iris", 2).await;
        // `_id` is the record id, whether or not it is profiled.
        let features = |p: &DatasetProfile| -> Vec<String> {
            names(p)
                .into_iter()
                .filter(|n| *n != "_id")
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            features(&profile),
            [
                "petal_length",
                "petal_width",
                "prediction.species",
                "sepal_length",
                "sepal_width"
            ],
            "{db:?}"
        );
        assert_eq!(feature_count(&profile, "sepal_length"), 2);
        assert_eq!(feature_count(&profile, "prediction.species"), 2);
        let unnamed = stored(&url, "unnamed", 2).await;
        assert_eq!(
            features(&unnamed),
            ["input_0", "input_1", "input_2", "input_3"],
            "{db:?}"
        );
        app.stop().await;
    }
}
