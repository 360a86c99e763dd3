//! Conformance: API tokens are kept by their hash, listed without it, and revoked; the
//! audit log keeps its entries.

use super::*;
use crate::model::token::{Role, Secret};

pub(super) async fn check_tokens_are_kept_by_hash_and_revoked(store: &dyn JobStore) {
    let ops = Secret::generate().unwrap();
    let made = store
        .create_token("ops", Role::Admin, ops.hash, NOW)
        .await
        .unwrap();
    assert_eq!(
        (made.name.as_str(), made.role, made.revoked_at),
        ("ops", Role::Admin, None)
    );
    let again = store
        .create_token("ops", Role::Read, Secret::generate().unwrap().hash, NOW)
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    let reader = Secret::generate().unwrap();
    store
        .create_token("ci", Role::Read, reader.hash, NOW + 1)
        .await
        .unwrap();
    let listed = store.tokens().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|t| (t.name.as_str(), t.role))
            .collect::<Vec<_>>(),
        [("ci", Role::Read), ("ops", Role::Admin)]
    );
    let active = store.active_tokens().await.unwrap();
    let hash_of = |name: &str| active.iter().find(|t| t.name == name).map(|t| t.hash);
    assert_eq!(hash_of("ops"), Some(ops.hash));
    assert_eq!(hash_of("ci"), Some(reader.hash));

    let revoked = store.revoke_token("ci", NOW + 2).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 2));
    let active = store.active_tokens().await.unwrap();
    assert_eq!(
        active.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["ops"]
    );
    let twice = store.revoke_token("ci", NOW + 3).await;
    assert!(matches!(twice, Err(Error::TokenNotFound(_))), "{twice:?}");
    let unknown = store.revoke_token("nobody", NOW + 3).await;
    assert!(
        matches!(unknown, Err(Error::TokenNotFound(_))),
        "{unknown:?}"
    );
    let listed = store.tokens().await.unwrap();
    assert_eq!(
        listed[0].revoked_at,
        Some(NOW + 2),
        "a revoked token stays listed"
    );
}

pub(super) async fn check_audit_entries_are_kept_newest_first(store: &dyn JobStore) {
    use crate::store::audit::AuditEntry;
    let entry = |n: i64, action: &str| AuditEntry {
        at: NOW + n,
        actor: "ops".into(),
        action: action.into(),
        target: "a1".into(),
        detail: JsonText::from_value(&json!({"n": n})),
    };
    store.record_audit(entry(1, "agent.created")).await.unwrap();
    store.record_audit(entry(2, "agent.changed")).await.unwrap();
    store.record_audit(entry(3, "agent.deleted")).await.unwrap();
    assert_eq!(
        store.audit(10).await.unwrap(),
        [
            entry(3, "agent.deleted"),
            entry(2, "agent.changed"),
            entry(1, "agent.created")
        ]
    );
    assert_eq!(store.audit(1).await.unwrap(), [entry(3, "agent.deleted")]);
}
