//! `vectors/storage.json`: the pruning model (chapter 10).

use kith_proto::storage::{PruneBudget, PruneModel};
use serde_json::{json, Value};

use crate::common::{file as vector_file, Case, Group};

fn budget_group() -> Group {
    let mut g = Group::new("StorageBudget", "Whether `storage_bytes` is an acceptable budget: at least 16384 (max_entry_bytes). A smaller one is a configuration error (the node does not start), so the result has no wire code.");
    for (id, bytes) in [("budget-valid-minimum", 16_384u64), ("budget-valid-large", 1 << 30)] {
        g.push(Case::valid(id, "At least max_entry_bytes.", &["PRUNE-2"]).with("storage_bytes", bytes));
    }
    let mut c = Case::invalid(
        "budget-invalid-below-entry-limit",
        "16383 bytes cannot hold one maximal entry.",
        &["PRUNE-2"],
        &["Oversized"],
        kith_proto::ErrorCode::Internal,
    )
    .with("storage_bytes", 16_383u64);
    c = c.with("error", Value::Null);
    g.push(c);
    g
}

fn prune_group() -> Group {
    let mut g = Group::new(
        "PruneOrder",
        "A node with `storage_bytes` newly stores entries in the order of `stores` (each with a `tag` and its size(E) `size`). After each store, it removes the earliest-arrived entries one at a time while the counted bytes exceed the budget (PRUNE-4) and never otherwise (PRUNE-5). `pruned` lists the tags removed after that store, `counted` the counted bytes after it (PRUNE-1), and `held` the tags still held, oldest first.",
    );
    let scenarios: [(&str, &str, u64, &[u64]); 4] = [
        (
            "prune-oldest-first",
            "Three 9000-byte entries under a 20000-byte budget: the third store evicts the first.",
            20_000,
            &[9_000, 9_000, 9_000],
        ),
        (
            "prune-exactly-at-budget",
            "Counted bytes equal to the budget prune nothing (PRUNE-5).",
            20_000,
            &[10_000, 10_000, 1],
        ),
        (
            "prune-several-at-once",
            "One large entry evicts several small ones, oldest first, and no more than needed.",
            16_384,
            &[4_000, 4_000, 4_000, 4_000, 16_000],
        ),
        (
            "prune-new-entry-survives",
            "An entry exactly at the budget evicts everything older.",
            16_384,
            &[100, 200, 16_384],
        ),
    ];
    for (id, comment, budget, sizes) in scenarios {
        let mut m = PruneModel::new(PruneBudget::new(budget).unwrap_or_else(|e| panic!("{e}")));
        let mut steps = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let tag = i as u64 + 1;
            let pruned = m.store(tag, *size);
            steps.push(json!({"tag": tag, "size": size, "pruned": pruned, "counted": m.total(), "held": m.stored().collect::<Vec<_>>()}));
        }
        g.push(
            Case::valid(id, comment, &["PRUNE-1", "PRUNE-3", "PRUNE-4", "PRUNE-5"])
                .with("storage_bytes", budget)
                .with("stores", Value::Array(steps)),
        );
    }
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith storage budget and pruning order",
        "A node's held entries are a cache under a byte budget that forgets the earliest-arrived entries first (spec chapter 10).",
        vec![budget_group(), prune_group()],
    )
}
