//! The notes attack: one user stores notes up to its limits and follows up to `max_follows`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kith_proto::identity::{AddIdentity, Follow, IdentityNote};
use kith_proto::{ClientFrame, SecretKey};

use crate::attack::common::{paced_call, per_address, Held, SRC_ATTACK};
use crate::conn::Conn;
use crate::ctx::Ctx;
use crate::setup::{at, src, SRC_ADMIN};
use crate::tally::{short, Tally};

/// A note of about `target` bytes (text and DNS addresses as long as the spec allows).
pub(crate) fn sized_note(author: &SecretKey, target: u64) -> IdentityNote {
    let subject = SecretKey::random().public();
    let label = "a".repeat(63);
    let mut addresses = Vec::new();
    let mut note = IdentityNote::sign(author, subject, "Someone", addresses.clone(), &"x".repeat(1024), 0);
    while note.size() < target && addresses.len() < kith_proto::identity::MAX_ADDRESSES {
        // Distinct names of 253 characters, the longest a DNS name may be.
        let host = format!("{label}.{label}.{label}.n{:060}", addresses.len());
        addresses.push(format!("/dns/{host}/ws/7777/{subject}"));
        note = IdentityNote::sign(author, subject, "Someone", addresses.clone(), &"x".repeat(1024), 0);
    }
    note
}

pub(crate) async fn notes_attack(ctx: &Ctx, tally: &Tally, admin: &SecretKey) -> Held {
    let l = ctx.limits.clone();
    let user = SecretKey::random();
    let created = async {
        let mut a = Conn::session(ctx, src(0, SRC_ADMIN), admin, None).await?;
        a.create_user(user.public(), 0, 0).await?;
        a.close().await;
        Ok::<_, String>(())
    };
    if let Err(e) = created.await {
        tally.add(format!("attack failure|notes: create the user: {}", short(&e)), 1);
        return Held::default();
    }
    let size = sized_note(&user, l.max_note_bytes / l.max_notes.max(1)).size();
    let notes = l.max_notes.min(l.max_note_bytes / size.max(1));
    tally.add(
        format!(
            "notes attack|notes of {size} bytes to store (max_notes {}, max_note_bytes {})",
            l.max_notes, l.max_note_bytes
        ),
        notes,
    );
    let k = per_address(ctx, true).min(8);
    let follows = ctx.args.attack_follows.min(l.max_follows);
    tally.add(format!("notes attack|keys to follow (max_follows {})", l.max_follows), follows);
    // Each connection paces itself at 80 % of the per-connection rate.
    let every = Duration::from_micros(1_250_000 / l.max_requests_per_second.max(1));
    let work = (0..k).map(|w| {
        let user = user.clone();
        async move {
            let mut c = Conn::session(ctx, src(SRC_ATTACK, 4), &user, None).await?;
            let mut out: BTreeMap<String, u64> = BTreeMap::new();
            let start = Instant::now();
            let mut i = 0u32;
            let t0 = Instant::now();
            for _ in (w as u64..notes).step_by(k) {
                at(start, every * i).await;
                i += 1;
                let note = sized_note(&user, size);
                let got = paced_call(
                    &mut c,
                    |id| ClientFrame::AddIdentity(AddIdentity { id, note: note.clone() }),
                    "add_identity_ok",
                )
                .await?;
                *out.entry(format!("add_identity: {got}")).or_default() += 1;
            }
            out.insert(
                "ms storing notes, summed over the connections (not compared)".into(),
                t0.elapsed().as_millis() as u64,
            );
            let t1 = Instant::now();
            for _ in (w as u64..follows).step_by(k) {
                at(start, every * i).await;
                i += 1;
                let key = SecretKey::random().public();
                let got = paced_call(&mut c, |id| ClientFrame::Follow(Follow { id, key }), "follow_ok").await?;
                *out.entry(format!("follow: {got}")).or_default() += 1;
            }
            out.insert(
                "ms following keys, summed over the connections (not compared)".into(),
                t1.elapsed().as_millis() as u64,
            );
            Ok::<_, String>((c, out))
        }
    });
    let mut held = Held { remove: Some(user.public()), ..Held::default() };
    for r in futures_util::future::join_all(work).await {
        match r {
            Ok((c, out)) => {
                for (key, n) in out {
                    tally.add(format!("notes attack|{key}"), n);
                }
                held.conns.push(c);
            }
            Err(e) => tally.add(format!("attack failure|notes: {}", short(&e)), 1),
        }
    }
    // One more of each must be refused: the bounds hold.
    if let Some(c) = held.conns.first_mut() {
        let note = sized_note(&user, size);
        let key = SecretKey::random().public();
        let mut checks = vec![(
            "one more note",
            paced_call(c, |id| ClientFrame::AddIdentity(AddIdentity { id, note: note.clone() }), "add_identity_ok")
                .await,
        )];
        if follows == l.max_follows {
            checks.push((
                "one more follow",
                paced_call(c, |id| ClientFrame::Follow(Follow { id, key }), "follow_ok").await,
            ));
        }
        for (what, r) in checks {
            match r {
                Ok(got) if got == "error quota_exceeded" => tally.add(format!("notes attack|{what}: {got}"), 1),
                Ok(got) => tally.add(format!("attack failure|notes: {what}: {got}, not quota_exceeded"), 1),
                Err(e) => tally.add(format!("attack failure|notes: {what}: {}", short(&e)), 1),
            }
        }
    }
    held
}
