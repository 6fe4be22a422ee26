use std::collections::HashMap;

use proptest::prelude::*;

use super::OrderIndex;

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u32),
    Remove(u64),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    // Keys from a small set (collisions, re-inserts, removals of present and absent keys) and
    // from the whole u64 range (0 and u64::MAX included).
    let key = prop_oneof![0u64..64, any::<u64>(), Just(0u64), Just(u64::MAX)];
    prop_oneof![
        6 => (key.clone(), 0u32..1_000_000).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => key.prop_map(Op::Remove),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    #[test]
    fn behaves_like_a_hash_map(ops in proptest::collection::vec(op(), 1..600)) {
        let mut index = OrderIndex::default();
        let mut model: HashMap<u64, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    let expected = match model.get(&k) {
                        Some(&old) => Err(old),
                        None => {
                            model.insert(k, v);
                            Ok(())
                        }
                    };
                    prop_assert_eq!(index.insert_new(k, v), expected);
                }
                Op::Remove(k) => prop_assert_eq!(index.remove(k), model.remove(&k)),
                Op::Clear => {
                    index.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(index.len(), model.len());
        }
        for (k, v) in &model {
            prop_assert_eq!(index.get(*k), Some(*v));
        }
        let mut listed: Vec<_> = index.iter().collect();
        listed.sort_unstable();
        let mut expected: Vec<_> = model.into_iter().collect();
        expected.sort_unstable();
        prop_assert_eq!(listed, expected);
    }
}

#[test]
fn dense_sequential_ids_survive_growth_and_removal() {
    let mut index = OrderIndex::default();
    for k in 0..10_000u64 {
        assert_eq!(index.insert_new(k * 7, k as u32), Ok(()));
    }
    for k in (0..10_000u64).step_by(2) {
        assert_eq!(index.remove(k * 7), Some(k as u32));
    }
    for k in 0..10_000u64 {
        let expected = (k % 2 == 1).then_some(k as u32);
        assert_eq!(index.get(k * 7), expected);
    }
    assert_eq!(index.len(), 5_000);
}
