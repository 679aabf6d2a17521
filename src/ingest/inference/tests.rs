//! Real logger events and payloads, each from the repository and path named above it.

use serde_json::{Map, Value, json};

use super::*;

fn rows(data: &str, direction: Direction, id: Option<&str>) -> (Vec<Value>, Rows) {
    let options = Options {
        direction,
        id: id.map(str::to_owned),
        max_columns: 100,
        positional_names: Vec::new(),
    };
    let mut out = Vec::new();
    let found = for_each_row(data.as_bytes(), &options, |r: Map<String, Value>| {
        out.push(Value::Object(r))
    })
    .unwrap();
    (out, found)
}

fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

#[test]
fn kserve_v1_request_and_response_share_their_ids() {
    // kserve/kserve docs/samples/logger/basic/README.md: the message dumper's two events.
    let envelope = binary(headers(&[
        ("ce-specversion", "1.0"),
        ("ce-type", "org.kubeflow.serving.inference.request"),
        ("ce-source", "http://localhost:9081/"),
        ("ce-id", "0009174a-24a8-4603-b098-09c8799950e9"),
        ("ce-inferenceservicename", "sklearn-iris"),
        ("ce-namespace", "default"),
        ("ce-endpoint", ""),
    ]))
    .unwrap();
    assert_eq!(envelope.server, Server::KServe);
    assert_eq!(envelope.direction, Direction::Request);
    assert_eq!(envelope.dataset.as_deref(), Some("sklearn-iris"));
    assert_eq!(
        envelope.labels,
        BTreeMap::from([("namespace".into(), "default".into())])
    );
    let id = envelope.id.as_deref();
    let (request, found) = rows(
        r#"{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}"#,
        Direction::Request,
        id,
    );
    assert_eq!(found.accepted, 2);
    assert_eq!(
        request[1],
        json!({"input_0": 6.0, "input_1": 3.4, "input_2": 4.5, "input_3": 1.6,
               "_id": "0009174a-24a8-4603-b098-09c8799950e9:1"})
    );
    let (response, _) = rows(r#"{"predictions": [1, 1]}"#, Direction::Response, id);
    assert_eq!(
        response,
        [
            json!({"prediction": 1, "_id": "0009174a-24a8-4603-b098-09c8799950e9:0"}),
            json!({"prediction": 1, "_id": "0009174a-24a8-4603-b098-09c8799950e9:1"})
        ]
    );
}

#[test]
fn kserve_v1_named_instances_keep_their_names_and_ids() {
    let (r, _) = rows(
        r#"{"instances": [{"age": 39, "country": "DE", "emb": [0.5, 0.25], "_id": "u-7"}]}"#,
        Direction::Request,
        Some("ev-1"),
    );
    assert_eq!(
        r,
        [json!({"age": 39, "country": "DE", "emb_0": 0.5, "emb_1": 0.25, "_id": "u-7"})]
    );
    let (r, _) = rows(
        r#"{"predictions": [{"label": "cat", "score": 0.9}]}"#,
        Direction::Response,
        Some("ev-1"),
    );
    assert_eq!(
        r,
        [json!({"prediction.label": "cat", "prediction.score": 0.9, "_id": "ev-1"})]
    );
}

#[test]
fn open_inference_protocol_tensors_become_columns() {
    // SeldonIO/seldon-core components/seldon-request-logger/testing/v2_iris_batch.txt
    let inputs = r#"{"model_name": "iris", "model_version": "1", "inputs": [
        {"name": "Sepal length", "shape": [2, 1], "datatype": "FP32", "data": [6.8, 6.1]},
        {"name": "Sepal width", "shape": [2, 1], "datatype": "FP32", "data": [2.8, 3.4]},
        {"name": "Petal length", "shape": [2, 1], "datatype": "FP32", "data": [4.8, 4.5]},
        {"name": "Petal width", "shape": [2, 1], "datatype": "FP32", "data": [1.4, 1.6]}]}"#;
    let (r, _) = rows(inputs, Direction::Request, None);
    assert_eq!(
        r[1],
        json!({"Sepal length": 6.1, "Sepal width": 3.4, "Petal length": 4.5, "Petal width": 1.6})
    );
    let outputs = r#"{"model_name": "iris", "model_version": "1", "outputs": [{"data": [0.1, 0.9,
        0.6, 0.4], "datatype": "FP32", "name": "dummy_proba_output_name", "shape": [2, 2]}]}"#;
    let (r, _) = rows(outputs, Direction::Response, Some("r"));
    assert_eq!(
        r[0],
        json!({"prediction.dummy_proba_output_name_0": 0.1,
               "prediction.dummy_proba_output_name_1": 0.9, "_id": "r:0"})
    );
    // SeldonIO/seldon-core docs/source/contents/inference/index.md: nested data, one row.
    let nested = r#"{"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP32", "data": [[1, 2, 3, 4]]}]}"#;
    let (r, _) = rows(nested, Direction::Request, None);
    assert_eq!(
        r,
        [json!({"predict_0": 1, "predict_1": 2, "predict_2": 3, "predict_3": 4})]
    );
    // BYTES are strings; a 1-D tensor is one value per row.
    let bytes = r#"{"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["hi", "yo"]},
                               {"name": "n", "shape": [2], "datatype": "INT64", "data": [1, null]}]}"#;
    let (r, _) = rows(bytes, Direction::Request, None);
    assert_eq!(
        r,
        [
            json!({"text": "hi", "n": 1}),
            json!({"text": "yo", "n": null})
        ]
    );
}

#[test]
fn bad_tensors_are_refused_naming_the_row_or_the_tensor() {
    let typed = r#"{"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1.5, "oops", 2]}]}"#;
    let (r, found) = rows(typed, Direction::Request, None);
    assert_eq!(r.len(), 2);
    assert_eq!(found.rejected_count, 1);
    assert_eq!(found.rejected[0].index, 1);
    assert_eq!(
        found.rejected[0].reason,
        "inputs \"x\": expected numbers for its datatype, found a string"
    );
    let options = Options {
        direction: Direction::Request,
        id: None,
        max_columns: 100,
        positional_names: Vec::new(),
    };
    let refused = |data: &str| {
        for_each_row(data.as_bytes(), &options, |_| {})
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused(
            r#"{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}"#
        ),
        "inputs[0] \"x\": shape [2, 2] needs 4 values, data has 3"
    );
    assert_eq!(
        refused(
            r#"{"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                           {"name": "b", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}"#
        ),
        "inputs: tensor \"b\" has 3 rows but \"a\" has 2: the first dimension of every tensor is the batch"
    );
    assert!(
        refused(r#"{"inputs": [{"name": "x", "shape": [1], "data": [1]}]}"#)
            .starts_with("inputs[0]: missing field `datatype`"),
        "{}",
        refused(r#"{"inputs": [{"name": "x", "shape": [1], "data": [1]}]}"#)
    );
    assert!(
        refused(r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP8", "data": [1]}]}"#)
            .contains("unknown datatype \"FP8\"")
    );
    assert_eq!(
        refused("{\"instances\": [1,\n ]}"),
        "invalid JSON at line 2, column 2: expected value"
    );
    assert!(
        refused(r#"{"rows": []}"#).starts_with("no inference payload found (keys: [\"rows\"])")
    );
    assert!(refused(r#"{"strData": "x"}"#).starts_with("Seldon strData and binData"));
}

#[test]
fn seldon_payloads_use_their_names() {
    // SeldonIO/seldon-core components/seldon-request-logger/testing/test.sh, one payload each.
    let (r, _) = rows(
        r#"{"data":{"names":["a","b"],"tensor":{"shape":[2,2],"values":[1,2,3,4]}}}"#,
        Direction::Request,
        Some("1a"),
    );
    assert_eq!(
        r,
        [
            json!({"a": 1, "b": 2, "_id": "1a:0"}),
            json!({"a": 3, "b": 4, "_id": "1a:1"})
        ]
    );
    let (r, _) = rows(
        r#"{"data":{"names":["c"],"ndarray":[[7],[8]]}}"#,
        Direction::Response,
        Some("2b"),
    );
    assert_eq!(
        r,
        [
            json!({"prediction.c": 7, "_id": "2b:0"}),
            json!({"prediction.c": 8, "_id": "2b:1"})
        ]
    );
    let (r, _) = rows(
        r#"{"data":{"names":["a"],"ndarray":["test1","test2"]}}"#,
        Direction::Request,
        None,
    );
    assert_eq!(r, [json!({"a": "test1"}), json!({"a": "test2"})]);
    let (r, _) = rows(
        r#"{"data":{"names":["t:0","t:1"],"ndarray":[[0.8538818809164035,0.14611811908359656]]},"meta":{"requestPath":{"income-container":"seldonio\/sklearnserver:1.7.0"}}}"#,
        Direction::Response,
        Some("2z4"),
    );
    assert_eq!(
        r,
        [
            json!({"prediction.t:0": 0.8538818809164035, "prediction.t:1": 0.14611811908359656, "_id": "2z4"})
        ]
    );
    let (r, _) = rows(
        r#"{"data": {"ndarray": [[1, 2, 3]]}}"#,
        Direction::Request,
        None,
    );
    assert_eq!(r, [json!({"input_0": 1, "input_1": 2, "input_2": 3})]);
    let (r, _) = rows(
        r#"{"jsonData": {"input": "{'input': '[[53  4  0  2  8  4  2  0  0  0 60  9]]'}"},"meta": {}}"#,
        Direction::Request,
        Some("11k"),
    );
    assert_eq!(
        r,
        [json!({"input": "{'input': '[[53  4  0  2  8  4  2  0  0  0 60  9]]'}", "_id": "11k"})]
    );
}

#[test]
fn seldon_envelopes_name_their_dataset_and_request_id() {
    // SeldonIO/seldon-core components/seldon-request-logger/testing/test.sh (request 3c):
    // no inferenceservicename, a model id instead.
    let envelope = binary(headers(&[
        ("Ce-Type", "io.seldon.serving.inference.request"),
        ("Ce-Requestid", "3c"),
        ("Ce-Modelid", "classifier"),
        ("Ce-Namespace", "default"),
        ("Ce-Endpoint", "example"),
    ]))
    .unwrap();
    assert_eq!(envelope.server, Server::Seldon);
    assert_eq!(envelope.id.as_deref(), Some("3c"));
    assert_eq!(envelope.dataset.as_deref(), Some("classifier"));
    assert_eq!(envelope.labels.len(), 3);
    let with_name = binary(headers(&[
        ("Ce-Type", "io.seldon.serving.inference.response"),
        ("Ce-Id", "event-1"),
        ("Ce-Requestid", "2z4"),
        ("Ce-Inferenceservicename", "income"),
        ("Ce-Modelid", "classifier"),
    ]))
    .unwrap();
    assert_eq!(with_name.direction, Direction::Response);
    assert_eq!(with_name.id.as_deref(), Some("2z4"));
    assert_eq!(with_name.dataset.as_deref(), Some("income"));
}

#[test]
fn cloudevents_0_1_and_structured_mode() {
    let old = binary(headers(&[
        ("ce-cloudeventsversion", "0.1"),
        ("ce-eventtype", "org.kubeflow.serving.inference.response"),
        ("ce-eventid", "abc"),
        ("ce-x-inferenceservicename", "iris"),
    ]))
    .unwrap();
    assert_eq!(old.direction, Direction::Response);
    assert_eq!(
        (old.id.as_deref(), old.dataset.as_deref()),
        (Some("abc"), Some("iris"))
    );

    let body = br#"{"specversion": "1.0", "type": "org.kubeflow.serving.inference.request",
        "source": "http://localhost:9081/", "id": "e1", "inferenceservicename": "iris",
        "datacontenttype": "application/json", "data": {"instances": [[1, 2]]}}"#;
    let (envelope, data) = structured(body).unwrap();
    assert_eq!(envelope.dataset.as_deref(), Some("iris"));
    assert_eq!(data.as_ref(), br#"{"instances": [[1, 2]]}"#);
    let body =
        br#"{"specversion": "1.0", "type": "io.seldon.serving.inference.request", "id": "e2",
        "data_base64": "eyJkYXRhIjogeyJuZGFycmF5IjogW1sxXV19fQ=="}"#;
    let (envelope, data) = structured(body).unwrap();
    assert_eq!(envelope.id.as_deref(), Some("e2"));
    assert_eq!(data.as_ref(), br#"{"data": {"ndarray": [[1]]}}"#);
    let body = br#"{"cloudEventsVersion": "0.1", "eventType": "org.kubeflow.serving.inference.request",
        "eventID": "e3", "extensions": {"inferenceservicename": "old"}, "data": "{\"instances\": [1]}"}"#;
    let (envelope, data) = structured(body).unwrap();
    assert_eq!(
        (envelope.id.as_deref(), envelope.dataset.as_deref()),
        (Some("e3"), Some("old"))
    );
    assert_eq!(data.as_ref(), br#"{"instances": [1]}"#);
}

#[test]
fn unknown_types_name_the_accepted_ones() {
    let e = binary(headers(&[(
        "ce-type",
        "org.kubeflow.serving.inference.outlier",
    )]))
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown CloudEvents type \"org.kubeflow.serving.inference.outlier\"; driftd takes \
         org.kubeflow.serving.inference.request, org.kubeflow.serving.inference.response, \
         io.seldon.serving.inference.request, io.seldon.serving.inference.response"
    );
    let e = binary(headers(&[])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("not a CloudEvent: no ce-type header"),
        "{e}"
    );
}

#[test]
fn wide_rows_keep_max_columns_and_count_the_rest() {
    let options = Options {
        direction: Direction::Request,
        id: None,
        max_columns: 3,
        positional_names: Vec::new(),
    };
    let mut kept = Vec::new();
    let found = for_each_row(br#"{"instances": [[1, 2, 3, 4, 5], [6]]}"#, &options, |r| {
        kept.push(r.len())
    })
    .unwrap();
    assert_eq!(kept, [3, 1]);
    assert_eq!(found.ignored_values, 2);
    assert_eq!(found.ignored_features, ["input_3", "input_4"]);
}

#[test]
fn positional_values_take_the_names_the_rules_give() {
    let named = |direction, names: &[&str], data: &str| {
        let options = Options {
            direction,
            id: None,
            max_columns: 100,
            positional_names: names.iter().map(|n| n.to_string()).collect(),
        };
        let mut out = Vec::new();
        for_each_row(data.as_bytes(), &options, |r: Map<String, Value>| {
            out.push(Value::Object(r))
        })
        .unwrap();
        out
    };
    // KServe V1 rows of numbers (docs/samples/v1beta1/sklearn iris-input.json's shape).
    let iris = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    assert_eq!(
        named(
            Direction::Request,
            &iris,
            r#"{"instances": [[6.8, 2.8, 4.8, 1.4]]}"#
        ),
        [json!({"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4})]
    );
    // Fewer names than values: the rest stay positional.
    assert_eq!(
        named(
            Direction::Request,
            &iris[..2],
            r#"{"data": {"ndarray": [[1, 2, 3]]}}"#
        ),
        [json!({"sepal_length": 1, "sepal_width": 2, "input_2": 3})]
    );
    // Outputs are predictions; names the payload carries win over the rules'.
    assert_eq!(
        named(
            Direction::Response,
            &["setosa", "versicolor"],
            r#"{"predictions": [[0.9, 0.1]]}"#
        ),
        [json!({"prediction.setosa": 0.9, "prediction.versicolor": 0.1})]
    );
    assert_eq!(
        named(
            Direction::Response,
            &["a", "b"],
            r#"{"data": {"names": ["t:0", "t:1"], "ndarray": [[0.8, 0.2]]}}"#
        ),
        [json!({"prediction.t:0": 0.8, "prediction.t:1": 0.2})]
    );
}
