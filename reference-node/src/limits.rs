//! Resource limits a hostile peer cannot get past (spec 06 §8): the per-address and pending
//! handshake counts of connections ([FRAME-42] .. [FRAME-44]). Each connection's token bucket of
//! received messages ([FRAME-45] .. [FRAME-47]) is the core's session's.
//!
//! It also paces the `hello` messages of each remote address ([HS-51]): beyond a burst, a hello
//! waits for its turn before its curve work is done. Pacing is invisible on the wire except as
//! a slower `challenge`, so it refuses nothing and reports nothing.
//!
//! The outbound-queue bound ([FRAME-34] .. [FRAME-37], [FRAME-48]) lives with the queue in `hub`,
//! the subscription bound ([FEED-11]) with the subscription registry.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kith_proto::ErrorCode;
use tokio::time::Instant;

/// The counts of open connections that FRAME-42 and FRAME-43 bound.
#[derive(Debug, Default)]
struct Counts {
    /// Open connections per remote IP address; an address with none has no row.
    per_address: BTreeMap<IpAddr, u64>,
    /// Open connections that have not been sent `welcome`, node-wide.
    pending: u64,
}

/// Admits connections against `max_connections_per_address` and `max_pending_handshakes`.
#[derive(Debug)]
pub(crate) struct Admission {
    counts: Mutex<Counts>,
    /// TCP connections whose WebSocket upgrade has not completed ([FRAME-51]): per address in
    /// `per_address`, node-wide in `pending`.
    upgrading: Mutex<Counts>,
    /// Fault `no-upgrade-limit`: never end a TCP connection for the counts before the upgrade.
    ignore_upgrading: bool,
    per_address: u64,
    pending: u64,
    /// Fault `no-connection-limit`: never refuse for the per-address count.
    ignore_per_address: bool,
    /// Fault `no-handshake-limit`: never refuse for the pending count.
    ignore_pending: bool,
    hellos: Mutex<HelloPacer>,
}

impl Admission {
    /// Admission with these two limits; the flags switch a check off (faults only). Hellos are
    /// paced at `hellos_per_second` per address.
    pub(crate) fn new(
        per_address: u64,
        pending: u64,
        ignore_per_address: bool,
        ignore_pending: bool,
        hellos_per_second: u64,
    ) -> Self {
        Admission {
            counts: Mutex::default(),
            upgrading: Mutex::default(),
            ignore_upgrading: false,
            per_address,
            pending,
            ignore_per_address,
            ignore_pending,
            hellos: Mutex::new(HelloPacer::new(hellos_per_second)),
        }
    }

    /// The same admission with the `no-upgrade-limit` fault (or not).
    pub(crate) fn ignoring_upgrade_limit(mut self, ignore: bool) -> Self {
        self.ignore_upgrading = ignore;
        self
    }

    /// Counts a TCP connection from `ip` that is starting its WebSocket upgrade, or None when
    /// it must be ended at once: `ip` already has 2 × `max_connections_per_address` upgrades
    /// under way, or the node 2 × `max_pending_handshakes` ([FRAME-51]). The place is released
    /// when the returned value is dropped (the upgrade completed or failed).
    pub(crate) fn start_upgrade(self: &Arc<Self>, ip: IpAddr) -> Option<Upgrading> {
        let ip = ip.to_canonical();
        let mut c = self.upgrading.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = c.per_address.get(&ip).copied().unwrap_or(0);
        if !self.ignore_upgrading
            && (from_ip >= self.per_address.saturating_mul(2) || c.pending >= self.pending.saturating_mul(2))
        {
            return None;
        }
        c.per_address.insert(ip, from_ip + 1);
        c.pending += 1;
        Some(Upgrading { admission: self.clone(), ip })
    }

    /// How long a `hello` from `ip` arriving at `now` waits before it is processed ([HS-51]).
    pub(crate) fn hello_delay(&self, ip: IpAddr, now: Instant) -> Duration {
        self.hellos.lock().unwrap_or_else(|p| p.into_inner()).delay(ip.to_canonical(), now)
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent under a panic: every update is a single step.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip` or names the limit it would pass. The per-address limit
    /// is checked first (06 §8.1); a refused connection does not count ([FRAME-44]). The slot
    /// counts toward both limits until [`Slot::welcomed`] or until it is dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, ErrorCode> {
        let ip = ip.to_canonical();
        let mut c = self.lock();
        let from_ip = c.per_address.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.per_address && !self.ignore_per_address {
            return Err(ErrorCode::TooManyConnections);
        }
        if c.pending >= self.pending && !self.ignore_pending {
            return Err(ErrorCode::TooManyHandshakes);
        }
        c.per_address.insert(ip, from_ip + 1);
        c.pending += 1;
        Ok(Slot { admission: self.clone(), ip, pending: true })
    }

    /// The open connections from `ip` and the pending handshakes node-wide (for tests).
    #[cfg(test)]
    fn counts(&self, ip: IpAddr) -> (u64, u64) {
        let c = self.lock();
        (c.per_address.get(&ip.to_canonical()).copied().unwrap_or(0), c.pending)
    }
}

/// One admitted connection's place in the counts; dropping it releases the place, so every way
/// out of a connection releases it.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
    /// Still counted as a pending handshake.
    pending: bool,
}

impl Slot {
    /// The connection's remote address.
    pub(crate) fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The connection is being sent `welcome`: it no longer counts as a pending handshake.
    pub(crate) fn welcomed(&mut self) {
        if std::mem::take(&mut self.pending) {
            let mut c = self.admission.lock();
            c.pending = c.pending.saturating_sub(1);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.admission.lock();
        if self.pending {
            c.pending = c.pending.saturating_sub(1);
        }
        if let Some(n) = c.per_address.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_address.remove(&self.ip);
            }
        }
    }
}

/// A TCP connection's place in the counts of upgrades under way ([FRAME-51]), released when
/// dropped.
#[derive(Debug)]
pub(crate) struct Upgrading {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Upgrading {
    fn drop(&mut self) {
        let mut c = self.admission.upgrading.lock().unwrap_or_else(|p| p.into_inner());
        c.pending = c.pending.saturating_sub(1);
        if let Some(n) = c.per_address.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_address.remove(&self.ip);
            }
        }
    }
}

/// Paces `hello` messages per remote address: a burst of `rate` at once, then `rate` per second
/// (the generic cell rate algorithm). A hello beyond the rate is not refused but scheduled: it
/// reserves the next free turn and waits for it, so concurrent hellos of one address are served
/// in turn, and the reserved time is bounded by the address's open connections.
#[derive(Debug)]
struct HelloPacer {
    /// Time between two turns, 1/rate.
    interval: Duration,
    /// How far ahead of now turns may be booked without waiting (the burst), (rate − 1)/rate.
    burst: Duration,
    /// Per address, the time its next turn would start if no burst were allowed; an address
    /// whose time has passed is idle and may be forgotten.
    next: BTreeMap<IpAddr, Instant>,
    /// The table is swept of idle addresses when it reaches this size.
    sweep_at: usize,
}

/// Least size of the pacer's table before a sweep.
const PACER_SWEEP_MIN: usize = 1024;

impl HelloPacer {
    fn new(rate: u64) -> Self {
        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        let burst = interval.saturating_mul(u32::try_from(rate.saturating_sub(1)).unwrap_or(u32::MAX));
        HelloPacer { interval, burst, next: BTreeMap::new(), sweep_at: PACER_SWEEP_MIN }
    }

    fn delay(&mut self, ip: IpAddr, now: Instant) -> Duration {
        if self.next.len() >= self.sweep_at {
            // Amortised: the table at least doubles between sweeps.
            self.next.retain(|_, t| *t > now);
            self.sweep_at = (self.next.len() * 2).max(PACER_SWEEP_MIN);
        }
        let tat = self.next.get(&ip).copied().unwrap_or(now).max(now);
        // The turn starts `burst` before the theoretical arrival time, but not before now.
        let start = tat.checked_sub(self.burst).map_or(now, |s| s.max(now));
        self.next.insert(ip, tat + self.interval);
        start - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    #[test]
    fn per_address_then_pending_exactly_at_the_limit() {
        let a = Arc::new(Admission::new(2, 3, false, false, 1));
        let x: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        let y: IpAddr = Ipv4Addr::new(10, 0, 0, 2).into();
        let x1 = a.admit(x).unwrap();
        let mut x2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), ErrorCode::TooManyConnections);
        // The IPv4-mapped form is the same address.
        assert_eq!(
            a.admit(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped())).unwrap_err(),
            ErrorCode::TooManyConnections
        );
        let y1 = a.admit(y).unwrap();
        assert_eq!(a.counts(x), (2, 3));
        // Both limits reached: per address is reported first.
        assert_eq!(a.admit(x).unwrap_err(), ErrorCode::TooManyConnections);
        assert_eq!(a.admit(y).unwrap_err(), ErrorCode::TooManyHandshakes);
        x2.welcomed();
        x2.welcomed();
        assert_eq!(a.counts(x), (2, 2));
        let y2 = a.admit(y).unwrap();
        drop((x1, x2));
        assert_eq!(a.counts(x), (0, 2));
        assert_eq!(a.counts(y), (2, 2));
        drop((y1, y2));
        assert_eq!(a.counts(y), (0, 0));
        assert!(a.lock().per_address.is_empty());
        let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
        let _v = a.admit(v6).unwrap();
    }

    #[test]
    fn upgrades_are_bounded_at_twice_the_limits() {
        let a = Arc::new(Admission::new(2, 3, false, false, 1));
        let x: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        let y: IpAddr = Ipv4Addr::new(10, 0, 0, 2).into();
        let z: IpAddr = Ipv4Addr::new(10, 0, 0, 3).into();
        let xs: Vec<Upgrading> = (0..4).filter_map(|_| a.start_upgrade(x)).collect();
        assert_eq!(xs.len(), 4);
        assert!(a.start_upgrade(x).is_none());
        // They do not count toward the connections of FRAME-42 and FRAME-43.
        assert_eq!(a.counts(x), (0, 0));
        let ys: Vec<Upgrading> = (0..2).filter_map(|_| a.start_upgrade(y)).collect();
        assert_eq!(ys.len(), 2);
        // Six under way node-wide: the node-wide bound.
        assert!(a.start_upgrade(z).is_none());
        drop(xs);
        assert!(a.start_upgrade(x).is_some());
        let b = Arc::new(Admission::new(1, 1, false, false, 1).ignoring_upgrade_limit(true));
        let many: Vec<Upgrading> = (0..10).filter_map(|_| b.start_upgrade(x)).collect();
        assert_eq!(many.len(), 10);
    }

    #[test]
    fn faults_switch_one_check_off() {
        let a = Arc::new(Admission::new(1, 1, true, false, 1));
        let x: IpAddr = Ipv4Addr::LOCALHOST.into();
        let mut s = a.admit(x).unwrap();
        s.welcomed();
        let _t = a.admit(x).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), ErrorCode::TooManyHandshakes);
        let b = Arc::new(Admission::new(1, 1, false, true, 1));
        let _u = b.admit(x).unwrap();
        assert_eq!(b.admit(x).unwrap_err(), ErrorCode::TooManyConnections);
        let _v = b.admit(Ipv4Addr::new(10, 0, 0, 9).into()).unwrap();
    }

    #[test]
    fn hellos_are_paced_per_address_after_a_burst() {
        let t0 = Instant::now();
        let mut p = HelloPacer::new(4);
        let x: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        let y: IpAddr = Ipv4Addr::new(10, 0, 0, 2).into();
        let ms = Duration::from_millis;
        // A burst of 4 at once, then one turn every 250 ms, reserved in order.
        let delays: Vec<Duration> = (0..7).map(|_| p.delay(x, t0)).collect();
        assert_eq!(delays, [ms(0), ms(0), ms(0), ms(0), ms(250), ms(500), ms(750)]);
        // Another address is not affected.
        assert_eq!(p.delay(y, t0), ms(0));
        // After an idle second and more, the burst is back.
        let later = t0 + ms(2750);
        assert!((0..4).all(|_| p.delay(x, later) == ms(0)));
        assert_eq!(p.delay(x, later), ms(250));
        // Idle addresses are forgotten once the table is large.
        let much_later = t0 + Duration::from_secs(60);
        let mut i = 0u32;
        while p.next.len() < p.sweep_at {
            p.delay(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), t0);
            i += 1;
        }
        p.delay(y, much_later);
        assert_eq!(p.next.len(), 1);
        // A rate of one is one at a time.
        let mut one = HelloPacer::new(1);
        assert_eq!((one.delay(x, t0), one.delay(x, t0)), (ms(0), ms(1000)));
    }
}
