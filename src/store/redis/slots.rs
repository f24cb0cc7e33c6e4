//! A Redis Cluster's slot map as `CLUSTER NODES` gives it: which primaries
//! serve slots, in slot order, and a digest of the map, for listings that
//! walk every primary and must notice when slots move under them. This
//! reads text only; the `CLUSTER NODES` call that fetches it is bounded by
//! the connection's response timeout and the store's cache timeout.

/// A cluster SCAN cursor: the slot, a digest of the slot map, and the
/// primary's own cursor (see `RedisCache::scan_page`).
pub(super) const SLOT_SHIFT: u32 = 50;
pub(super) const DIGEST_SHIFT: u32 = 40;
pub(super) const DIGEST_MASK: u64 = (1 << 10) - 1;
pub(super) const NODE_CURSOR: u64 = (1 << DIGEST_SHIFT) - 1;

/// A primary that serves slots, as `CLUSTER NODES` lists it.
#[derive(Debug, PartialEq)]
pub(super) struct Primary {
    pub first_slot: u16,
    pub host: String,
    pub port: u16,
}

/// The primaries serving slots in `CLUSTER NODES` output, by the lowest slot
/// each serves, and a 10-bit digest of which node serves which slots. An
/// error when some slot has no serving primary (a listing would miss its
/// sessions). A primary only suspected of failing (`fail?`) still serves:
/// if it is down, the call routed to it fails. A slot being migrated
/// (`[slot->-node]`, `[slot-<-node]`) is an error too: its keys are split
/// between two primaries, and the per-key calls of a listing would chase
/// redirections until they time out (seen with the redis crate 1.8).
pub(super) fn serving_primaries(nodes: &str) -> std::result::Result<(Vec<Primary>, u64), &'static str> {
    let mut primaries = Vec::new();
    let mut map = Vec::new();
    let mut covered = 0u32;
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(id), Some(address), Some(flags)) = (fields.first(), fields.get(1), fields.get(2)) else { continue };
        let serving = flags.split(',').any(|f| f == "master") && !flags.split(',').any(|f| f == "fail");
        if !serving {
            continue;
        }
        if fields.iter().skip(8).any(|range| range.starts_with('[')) {
            return Err("slots are migrating between the cluster's primaries: list again when the resharding is done");
        }
        let ranges: Vec<(u16, u16)> = fields
            .iter()
            .skip(8)
            .filter_map(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                let (low, high): (u16, u16) = (low.parse().ok()?, high.parse().ok()?);
                (low <= high && high < 16384).then_some((low, high))
            })
            .collect();
        let Some(first_slot) = ranges.iter().map(|(low, _)| *low).min() else { continue };
        covered += ranges.iter().map(|(low, high)| u32::from(high - low) + 1).sum::<u32>();
        let endpoint = address.split(['@', ',']).next().unwrap_or_default();
        let Some((host, port)) = endpoint.rsplit_once(':') else {
            return Err("CLUSTER NODES gave an address without a port");
        };
        let port = port.parse().map_err(|_| "CLUSTER NODES gave an address without a port")?;
        map.push(format!("{id} {ranges:?}"));
        primaries.push(Primary { first_slot, host: host.trim_matches(['[', ']']).to_owned(), port });
    }
    if covered < 16384 {
        return Err("some of the cluster's slots have no primary serving them: a listing would miss their sessions");
    }
    primaries.sort_by_key(|p| p.first_slot);
    map.sort();
    // FNV-1a over the slot map: the same map gives the same digest on
    // every call and every process.
    let digest =
        map.join("\n").bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    Ok((primaries, digest & DIGEST_MASK))
}

#[cfg(test)]
mod tests {
    use super::{Primary, serving_primaries};

    const NODES: &str = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002,host-b master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave a1 0 0 1 connected
";

    fn primary(first_slot: u16, port: u16) -> Primary {
        Primary { first_slot, host: "127.0.0.1".into(), port }
    }

    #[test]
    fn primaries_are_read_in_slot_order_with_a_digest_of_the_slot_map() {
        let (primaries, digest) = serving_primaries(NODES).unwrap();
        assert_eq!(primaries, vec![primary(0, 7001), primary(5461, 7002), primary(10923, 7003)]);
        // The same map in another order gives the same digest; a moved slot another.
        let reordered: String = NODES.lines().rev().map(|l| format!("{l}\n")).collect();
        assert_eq!(serving_primaries(&reordered).unwrap().1, digest);
        let resharded = NODES.replace("0-5460", "0-5459").replace("5461-10922", "5460-10922");
        assert_ne!(serving_primaries(&resharded).unwrap().1, digest);
        // A primary only suspected of failing still serves.
        assert!(serving_primaries(&NODES.replace("myself,master", "myself,master,fail?")).is_ok());
    }

    #[test]
    fn slots_without_a_serving_primary_are_an_error() {
        let failed = NODES.replace("myself,master", "myself,master,fail");
        assert!(serving_primaries(&failed).unwrap_err().contains("no primary serving them"));
        let gap = NODES.replace("10923-16383", "10923-16000");
        assert!(serving_primaries(&gap).is_err());
        assert!(serving_primaries("").is_err());
        let migrating = NODES.replace("5461-10922", "5461-10922 [5470->-c3]");
        assert!(serving_primaries(&migrating).unwrap_err().contains("migrating"));
    }
}
