//! The `.proto` files are Vltava's public contract. These tests hold them to two promises:
//!
//! 1. **Conventions** (`buf lint`'s STANDARD and COMMENTS rules, as configured in `proto/buf.yaml`):
//!    versioned package matching the directory, PascalCase messages, services and RPCs,
//!    lower_snake_case fields, enum values UPPER_SNAKE_CASE and prefixed with their enum's name,
//!    `*Service` names, `<Rpc>Request` / `<Rpc>Response` messages, and a comment on every
//!    service, RPC, message, field, enum and value. The few deliberate exceptions are listed in
//!    [`EXCEPTIONS`] and in `buf.yaml`, each with its reason.
//! 2. **Backwards compatibility** (`buf breaking`'s WIRE_JSON idea): every field, enum value and
//!    RPC recorded in `proto/vltava.v1.lock` must still exist with the same number, name, type and
//!    cardinality. New ones must be recorded: run the test with `VLTAVA_UPDATE_PROTO_LOCK=1` to
//!    append them, and commit the lock with the change.

use std::collections::BTreeSet;
use std::path::PathBuf;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// Deliberate departures from buf's STANDARD rules: (rule, element, reason).
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "ENUM_ZERO_VALUE_SUFFIX",
        "vltava.v1.ErrorCode",
        "error codes are Kafka's numbers, and Kafka's code 0 is NONE: ERROR_CODE_NONE reads right",
    ),
    (
        "RPC_RESPONSE_STANDARD_NAME",
        "vltava.v1.RecordService/Subscribe",
        "streams the same PartitionRecords that Fetch returns per partition",
    ),
    (
        "RPC_REQUEST_STANDARD_NAME",
        "vltava.v1.ControllerRaftService/Step",
        "internal: carries raft-rs messages between controllers, not a client API",
    ),
    (
        "RPC_RESPONSE_STANDARD_NAME",
        "vltava.v1.ControllerRaftService/Step",
        "internal: carries raft-rs messages between controllers, not a client API",
    ),
    (
        "RPC_REQUEST_STANDARD_NAME",
        "vltava.v1.ControllerService/*",
        "internal: the controller takes the same requests as AdminService for the same operations",
    ),
    (
        "RPC_RESPONSE_STANDARD_NAME",
        "vltava.v1.ControllerService/*",
        "internal: every metadata write answers with the same ControllerWriteResponse",
    ),
];

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(vltava_proto::v1::FILE_DESCRIPTOR_SET).expect("the embedded descriptor set decodes")
}

fn is_exempt(rule: &str, element: &str) -> bool {
    EXCEPTIONS.iter().any(|(r, e, _)| {
        *r == rule && (*e == element || e.strip_suffix('*').is_some_and(|prefix| element.starts_with(prefix)))
    })
}

fn is_pascal(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_lower_snake(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__")
}

fn is_upper_snake(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__")
}

/// `ErrorCode` → `ERROR_CODE`.
fn upper_snake_of(pascal: &str) -> String {
    let mut out = String::new();
    for (i, c) in pascal.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Whether the element at `path` in `file` has a non-empty leading comment.
fn has_comment(file: &FileDescriptorProto, path: &[i32]) -> bool {
    file.source_code_info.as_ref().is_some_and(|info| {
        info.location
            .iter()
            .any(|l| l.path == path && l.leading_comments.as_deref().is_some_and(|c| !c.trim().is_empty()))
    })
}

// Field numbers of descriptor.proto, used in source-code-info paths.
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const MESSAGE_ONEOF: i32 = 8;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

struct Linter<'a> {
    file: &'a FileDescriptorProto,
    problems: Vec<String>,
}

impl Linter<'_> {
    fn check(&mut self, rule: &str, element: &str, ok: bool) {
        if !ok && !is_exempt(rule, element) {
            self.problems.push(format!("{}: {rule}: {element}", self.file.name()));
        }
    }

    fn enumeration(&mut self, e: &EnumDescriptorProto, scope: &str, path: Vec<i32>) {
        let name = format!("{scope}.{}", e.name());
        self.check("ENUM_PASCAL_CASE", &name, is_pascal(e.name()));
        self.check("COMMENT_ENUM", &name, has_comment(self.file, &path));
        let prefix = format!("{}_", upper_snake_of(e.name()));
        for (i, v) in e.value.iter().enumerate() {
            let value = format!("{name}.{}", v.name());
            self.check("ENUM_VALUE_UPPER_SNAKE_CASE", &value, is_upper_snake(v.name()));
            self.check("ENUM_VALUE_PREFIX", &value, v.name().starts_with(&prefix));
            if v.number() == 0 {
                self.check("ENUM_ZERO_VALUE_SUFFIX", &name, v.name().ends_with("_UNSPECIFIED"));
            }
            let mut p = path.clone();
            p.extend([ENUM_VALUE, i as i32]);
            self.check("COMMENT_ENUM_VALUE", &value, has_comment(self.file, &p));
        }
    }

    fn message(&mut self, m: &DescriptorProto, scope: &str, path: Vec<i32>) {
        let name = format!("{scope}.{}", m.name());
        if m.options.as_ref().is_some_and(|o| o.map_entry()) {
            return; // synthesised for `map<,>` fields
        }
        self.check("MESSAGE_PASCAL_CASE", &name, is_pascal(m.name()));
        self.check("COMMENT_MESSAGE", &name, has_comment(self.file, &path));
        for (i, f) in m.field.iter().enumerate() {
            let field = format!("{name}.{}", f.name());
            self.check("FIELD_LOWER_SNAKE_CASE", &field, is_lower_snake(f.name()));
            let mut p = path.clone();
            p.extend([MESSAGE_FIELD, i as i32]);
            self.check("COMMENT_FIELD", &field, has_comment(self.file, &p));
        }
        for (i, o) in m.oneof_decl.iter().enumerate() {
            // proto3 `optional` fields get a synthetic oneof named `_field`: not a real one.
            if o.name().starts_with('_') {
                continue;
            }
            let oneof = format!("{name}.{}", o.name());
            self.check("ONEOF_LOWER_SNAKE_CASE", &oneof, is_lower_snake(o.name()));
            let mut p = path.clone();
            p.extend([MESSAGE_ONEOF, i as i32]);
            self.check("COMMENT_ONEOF", &oneof, has_comment(self.file, &p));
        }
        for (i, nested) in m.nested_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([MESSAGE_NESTED, i as i32]);
            self.message(nested, &name, p);
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([MESSAGE_ENUM, i as i32]);
            self.enumeration(e, &name, p);
        }
    }

    fn file(&mut self) {
        let file = self.file;
        let package = file.package();
        self.check("PACKAGE_VERSION_SUFFIX", package, package.rsplit('.').next().is_some_and(|v| v == "v1"));
        let dir = file.name().rsplit_once('/').map(|(d, _)| d.replace('/', ".")).unwrap_or_default();
        self.check("PACKAGE_DIRECTORY_MATCH", package, dir == package);
        let scope = package.to_string();
        for (i, m) in file.message_type.iter().enumerate() {
            self.message(m, &scope, vec![FILE_MESSAGE, i as i32]);
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            self.enumeration(e, &scope, vec![FILE_ENUM, i as i32]);
        }
        for (i, s) in file.service.iter().enumerate() {
            let service = format!("{scope}.{}", s.name());
            self.check("SERVICE_PASCAL_CASE", &service, is_pascal(s.name()));
            self.check("SERVICE_SUFFIX", &service, s.name().ends_with("Service"));
            self.check("COMMENT_SERVICE", &service, has_comment(file, &[FILE_SERVICE, i as i32]));
            for (j, m) in s.method.iter().enumerate() {
                let rpc = format!("{service}/{}", m.name());
                self.check("RPC_PASCAL_CASE", &rpc, is_pascal(m.name()));
                self.check("COMMENT_RPC", &rpc, has_comment(file, &[FILE_SERVICE, i as i32, SERVICE_METHOD, j as i32]));
                let local = |t: &str| t.rsplit('.').next().unwrap_or_default().to_string();
                self.check("RPC_REQUEST_STANDARD_NAME", &rpc, local(m.input_type()) == format!("{}Request", m.name()));
                self.check(
                    "RPC_RESPONSE_STANDARD_NAME",
                    &rpc,
                    local(m.output_type()) == format!("{}Response", m.name()),
                );
            }
        }
    }
}

#[test]
fn the_protos_follow_bufs_standard_and_comment_rules() {
    let set = descriptors();
    assert!(set.file.len() >= 7, "every vltava.v1 file is in the descriptor set");
    let mut problems = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "vltava.v1") {
        let mut linter = Linter { file, problems: Vec::new() };
        linter.file();
        problems.extend(linter.problems);
    }
    assert!(problems.is_empty(), "proto convention violations:\n{}", problems.join("\n"));
}

#[test]
fn the_linter_catches_what_it_claims_to() {
    assert!(is_pascal("ProduceRequest") && !is_pascal("produce_request") && !is_pascal("Produce_Request"));
    assert!(is_lower_snake("fetch_offset") && !is_lower_snake("fetchOffset") && !is_lower_snake("a__b"));
    assert!(is_upper_snake("ERROR_CODE_NONE") && !is_upper_snake("ErrorCode"));
    assert_eq!(upper_snake_of("OffsetReset"), "OFFSET_RESET");
    assert!(is_exempt("RPC_REQUEST_STANDARD_NAME", "vltava.v1.ControllerService/RegisterBroker"));
    assert!(!is_exempt("RPC_REQUEST_STANDARD_NAME", "vltava.v1.RecordService/Produce"));
    // An undocumented field is reported.
    let file = FileDescriptorProto {
        name: Some("vltava/v1/x.proto".into()),
        package: Some("vltava.v1".into()),
        message_type: vec![DescriptorProto {
            name: Some("Thing".into()),
            field: vec![prost_types::FieldDescriptorProto { name: Some("badName".into()), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut linter = Linter { file: &file, problems: Vec::new() };
    linter.file();
    let found = linter.problems.join("\n");
    for rule in ["COMMENT_MESSAGE", "COMMENT_FIELD", "FIELD_LOWER_SNAKE_CASE"] {
        assert!(found.contains(rule), "{rule} missing from:\n{found}");
    }
}

/// One line per field, enum value and RPC: what a compatible change must keep.
fn contract_lines(set: &FileDescriptorSet) -> BTreeSet<String> {
    fn message(lines: &mut BTreeSet<String>, m: &DescriptorProto, scope: &str) {
        let name = format!("{scope}.{}", m.name());
        for f in &m.field {
            let ty = match f.r#type() {
                Type::Message | Type::Enum => f.type_name().trim_start_matches('.').to_string(),
                t => t.as_str_name().trim_start_matches("TYPE_").to_lowercase(),
            };
            let repeated = if f.label() == Label::Repeated { " repeated" } else { "" };
            lines.insert(format!("field {name}.{} = {} {ty}{repeated}", f.name(), f.number()));
        }
        for nested in &m.nested_type {
            message(lines, nested, &name);
        }
        for e in &m.enum_type {
            enumeration(lines, e, &name);
        }
    }
    fn enumeration(lines: &mut BTreeSet<String>, e: &EnumDescriptorProto, scope: &str) {
        for v in &e.value {
            lines.insert(format!("enum {scope}.{}.{} = {}", e.name(), v.name(), v.number()));
        }
    }
    let mut lines = BTreeSet::new();
    for file in set.file.iter().filter(|f| f.package() == "vltava.v1") {
        let scope = file.package();
        for m in &file.message_type {
            message(&mut lines, m, scope);
        }
        for e in &file.enum_type {
            enumeration(&mut lines, e, scope);
        }
        for s in &file.service {
            for m in &s.method {
                let stream = |on: bool| if on { "stream " } else { "" };
                lines.insert(format!(
                    "rpc {scope}.{}/{} ({}{}) returns ({}{})",
                    s.name(),
                    m.name(),
                    stream(m.client_streaming()),
                    m.input_type().trim_start_matches('.'),
                    stream(m.server_streaming()),
                    m.output_type().trim_start_matches('.'),
                ));
            }
        }
    }
    lines
}

#[test]
fn every_recorded_field_enum_value_and_rpc_is_still_there() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/vltava.v1.lock");
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    let recorded: BTreeSet<String> =
        recorded.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(str::to_string).collect();
    let current = contract_lines(&descriptors());
    let broken: Vec<&String> = recorded.difference(&current).collect();
    let added: Vec<&String> = current.difference(&recorded).collect();
    if std::env::var_os("VLTAVA_UPDATE_PROTO_LOCK").is_some() {
        assert!(broken.is_empty(), "refusing to record a breaking change; these are gone or changed:\n{broken:#?}");
        let mut text = String::from(
            "# The wire contract of vltava.v1: every line must stay true (see crates/proto/tests/contract.rs).\n\
             # Add lines with `VLTAVA_UPDATE_PROTO_LOCK=1 cargo test --workspace --all-targets every_recorded_field`; never remove any.\n",
        );
        for line in &current {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert!(
        broken.is_empty(),
        "backwards-incompatible change to the protos (removed, renumbered, renamed or retyped):\n{broken:#?}"
    );
    assert!(
        added.is_empty(),
        "new proto elements are not recorded in proto/vltava.v1.lock; run with VLTAVA_UPDATE_PROTO_LOCK=1:\n{added:#?}"
    );
}
