//! Admission: how many connections are open, in all and per peer address.
//! A slot is held by the socket itself (see [`super::io::ConnIo`]), so a
//! WebSocket keeps its slot after the HTTP upgrade.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections.
#[derive(Debug)]
pub(crate) struct Gate {
    total_max: usize,
    per_ip_max: usize,
    trusted: Vec<IpAddr>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` are open.
    Total,
    /// `max_connections_per_ip` are open from this address.
    PerIp,
}

impl Refusal {
    /// The stable code, also the metric's label.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Refusal::Total => "too_many_connections",
            Refusal::PerIp => "too_many_connections_from_address",
        }
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Gate {
    pub(crate) fn new(total_max: usize, per_ip_max: usize, trusted: Vec<IpAddr>) -> Arc<Self> {
        Arc::new(Gate {
            total_max,
            per_ip_max,
            trusted,
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits a connection from `ip`, or says which limit refuses it.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.total_max {
            return Err(Refusal::Total);
        }
        let exempt = self.trusted.iter().any(|t| t.to_canonical() == ip);
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if !exempt && from_ip >= self.per_ip_max {
            return Err(Refusal::PerIp);
        }
        open.total += 1;
        open.per_ip.insert(ip, from_ip + 1);
        Ok(Slot {
            gate: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_in_all_and_per_address_and_freed_on_drop() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let proxy: IpAddr = "192.0.2.9".parse().unwrap();
        let gate = Gate::new(4, 2, vec![proxy]);
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::PerIp);
        let _b1 = gate.admit(b).unwrap();
        let _p1 = gate.admit(proxy).unwrap();
        assert_eq!(gate.admit(proxy).unwrap_err(), Refusal::Total);
        drop(a1);
        assert_eq!(gate.open(), 3);
        let _a3 = gate.admit(a).unwrap();
    }
}
