#[test]
fn placeholder() {
    let _: serde_yaml_ng::Value = serde_yaml_ng::from_str("a: 1").unwrap();
}
