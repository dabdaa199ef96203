//! The network of a chaos run: one network namespace per node, each joined to a bridge in this
//! process's namespace by a veth pair, and partitions made with nftables rules inside the
//! nodes' namespaces.
//!
//! The harness itself (the clients and the nemesis) sits on the bridge and is never cut off:
//! a partition drops only traffic between nodes, as a switch failure between servers would,
//! while clients can still reach every node (and see what a minority side answers).
//!
//! Needs root (or `CAP_NET_ADMIN`), `ip` from iproute2 and `nft` from nftables.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// A pair of nodes that cannot talk to each other, smaller index first.
pub type Cut = (usize, usize);

/// Nodes in their own namespaces on one bridge; removed when dropped.
pub struct Network {
    prefix: String,
    nodes: Vec<Node>,
}

/// One node's namespace and address.
#[derive(Clone, Debug)]
pub struct Node {
    /// The namespace's name, as `ip netns` knows it.
    pub netns: String,
    pub ip: Ipv4Addr,
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {program}: {e} (install iproute2 and nftables, run as root)"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("write to {program}: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("wait for {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args, None)
}

impl Network {
    /// The bridge's own address: where the harness's clients come from.
    pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

    /// Makes `nodes` namespaces named `{prefix}{i}` on the bridge `{prefix}br` (10.77.0.0/24,
    /// node `i` at 10.77.0.(10+i)), first removing whatever an earlier run with the same prefix
    /// left behind. `prefix` is at most 8 characters (interface names are at most 15).
    ///
    /// # Errors
    ///
    /// A command that failed, with its error output.
    pub fn create(prefix: &str, nodes: usize) -> Result<Network, String> {
        assert!(prefix.len() <= 8 && nodes <= 100);
        Self::remove(prefix, 100);
        let bridge = format!("{prefix}br");
        let gateway = format!("{}/24", Self::GATEWAY);
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        let mut network = Network {
            prefix: prefix.to_string(),
            nodes: Vec::new(),
        };
        ip(&["addr", "add", &gateway, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..nodes {
            let node = Node {
                netns: format!("{prefix}{i}"),
                ip: Ipv4Addr::new(10, 77, 0, 10 + i as u8),
            };
            let veth = format!("{prefix}v{i}");
            ip(&["netns", "add", &node.netns])?;
            network.nodes.push(node.clone());
            let ns = node.netns.as_str();
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", node.ip),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        network.heal()?;
        Ok(network)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Cuts exactly the pairs in `cuts` (and heals every other pair): each node drops what
    /// comes from the nodes it is cut from, so every cut holds both ways.
    ///
    /// # Errors
    ///
    /// An `nft` failure.
    pub fn apply(&self, cuts: &BTreeSet<Cut>) -> Result<(), String> {
        let mut errors = vec![];
        for (i, node) in self.nodes.iter().enumerate() {
            let blocked: Vec<String> = self
                .nodes
                .iter()
                .enumerate()
                .filter(|&(j, _)| cuts.contains(&(i.min(j), i.max(j))) && i != j)
                .map(|(_, other)| other.ip.to_string())
                .collect();
            let mut script = String::from(
                "add table inet chaos\nflush table inet chaos\n\
                 add chain inet chaos input { type filter hook input priority 0; policy accept; }\n",
            );
            if !blocked.is_empty() {
                script.push_str(&format!(
                    "add rule inet chaos input ip saddr {{ {} }} drop\n",
                    blocked.join(", ")
                ));
            }
            // Every node gets its rules even if another's failed, and a failure is tried
            // once more: a heal that stopped half-way would leave nodes cut off.
            let args = ["netns", "exec", &node.netns, "nft", "-f", "-"];
            if let Err(e) =
                run("ip", &args, Some(&script)).or_else(|_| run("ip", &args, Some(&script)))
            {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Lets every node reach every other again.
    ///
    /// # Errors
    ///
    /// As [`Network::apply`].
    pub fn heal(&self) -> Result<(), String> {
        self.apply(&BTreeSet::new())
    }

    /// Removes the bridge and up to `nodes` namespaces made with `prefix`; what does not exist
    /// is skipped.
    fn remove(prefix: &str, nodes: usize) {
        for i in 0..nodes {
            let _ = ip(&["netns", "delete", &format!("{prefix}{i}")]);
        }
        let _ = ip(&["link", "delete", &format!("{prefix}br")]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        Self::remove(&self.prefix, self.nodes.len());
    }
}

/// The partitions the nemesis makes, as sets of cut pairs over `n` nodes.
pub mod partition {
    use super::Cut;
    use std::collections::BTreeSet;

    /// Every pair between a node in `side` and a node outside it.
    pub fn halves(n: usize, side: &BTreeSet<usize>) -> BTreeSet<Cut> {
        let mut cuts = BTreeSet::new();
        for a in 0..n {
            for b in a + 1..n {
                if side.contains(&a) != side.contains(&b) {
                    cuts.insert((a, b));
                }
            }
        }
        cuts
    }

    /// `node` cut off from all others.
    pub fn isolate(n: usize, node: usize) -> BTreeSet<Cut> {
        halves(n, &BTreeSet::from([node]))
    }

    /// A ring of overlapping majorities: the nodes in `order` form a ring, and each talks only
    /// to itself and its two neighbours. With 4 or 5 nodes every node sees a majority, yet no
    /// two nodes see the same one.
    pub fn ring(order: &[usize]) -> BTreeSet<Cut> {
        let n = order.len();
        let mut cuts = BTreeSet::new();
        for i in 0..n {
            for j in i + 1..n {
                let distance = (j - i).min(n - (j - i));
                if distance > 1 {
                    let (a, b) = (order[i], order[j]);
                    cuts.insert((a.min(b), a.max(b)));
                }
            }
        }
        cuts
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn halves_cut_across_only() {
            let cuts = halves(4, &BTreeSet::from([0, 2]));
            assert_eq!(cuts, BTreeSet::from([(0, 1), (0, 3), (1, 2), (2, 3)]));
            assert_eq!(isolate(3, 1), BTreeSet::from([(0, 1), (1, 2)]));
        }

        #[test]
        fn a_ring_of_five_leaves_each_node_a_majority_of_its_own() {
            let cuts = ring(&[3, 0, 4, 1, 2]);
            for node in 0..5 {
                let reachable = (0..5)
                    .filter(|&other| !cuts.contains(&(node.min(other), node.max(other))))
                    .count();
                assert_eq!(reachable, 3, "node {node} with {cuts:?}");
            }
            // Neighbours on the ring talk; the rest do not.
            assert!(!cuts.contains(&(0, 3)) && !cuts.contains(&(0, 4)));
            assert!(cuts.contains(&(0, 1)) && cuts.contains(&(0, 2)));
        }
    }
}
