//! The discrete-event simulation of one policy over one trace.
//!
//! State: a FIFO of ready tasks, worker pods (starting → running → draining → gone), KEDA and the
//! HPA. Events, in time order (ties in this order): a task finishes, a draining pod's grace
//! period ends, a pod becomes ready, tasks arrive, a `StreamIsActive` push reaches KEDA, KEDA
//! polls, the HPA syncs. Time is kept in whole milliseconds, so results are exact and repeatable.
//!
//! Workers: a running pod claims ready tasks (oldest first) whenever it has a free slot; claims
//! are immediate (LISTEN/NOTIFY). When the replica count drops, Kubernetes deletes starting pods
//! first, then the most recently ready ones (the ReplicaSet's deletion order); a deleted worker
//! stops claiming, finishes its in-flight tasks and exits; tasks still running after the
//! shutdown grace are handed back to the queue (ready again at once) and re-run from the start.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use serde::Serialize;

use super::hpa::Hpa;
use super::keda::Keda;
use super::policy::{Activation, Metric, Policy};
use super::trace::Trace;
use super::workload::Workload;

/// When KEDA's polls and the HPA's syncs fall, as a fraction of their period after the trace
/// starts (the same for every policy, so they compare on equal terms).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Phases {
    pub poll: f64,
    pub hpa: f64,
}

impl Phases {
    pub fn from_seed(seed: u64) -> Phases {
        Phases {
            poll: super::workload::unit(seed ^ 0x5eed_0001, 0),
            hpa: super::workload::unit(seed ^ 0x5eed_0002, 0),
        }
    }
}

/// Who changed the replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Keda,
    Hpa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScaleEvent {
    pub at_ms: u64,
    pub from: u32,
    pub to: u32,
    pub by: Actor,
    /// Tasks running (on any pod) at that moment.
    pub running_tasks: u64,
}

/// Per-bucket maxima over time (every policy uses the same bucket width).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    pub bucket_ms: u64,
    /// Ready (queued) tasks.
    pub ready: Vec<u64>,
    /// Tasks running.
    pub running: Vec<u64>,
    /// The replica count set by KEDA/HPA (`spec.replicas`).
    pub replicas: Vec<u32>,
    /// Pods that exist: starting, running or draining.
    pub pods: Vec<u32>,
}

/// Everything one policy's run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub policy: String,
    pub tasks: u64,
    /// Task starts, including re-runs of handed-back tasks.
    pub starts: u64,
    pub handed_back: u64,
    /// `(wait_ms, how many starts waited that long)`, sorted by wait.
    #[serde(skip)]
    pub waits: Vec<(u64, u64)>,
    pub within_slo: u64,
    /// Sum over time of pods that exist (starting, running or draining), in ms.
    pub pod_ms: u128,
    /// Sum over time of running tasks, in ms.
    pub busy_task_ms: u128,
    pub scale_events: Vec<ScaleEvent>,
    /// For each scale from zero (tasks waiting with no replicas): the wait of the first task
    /// served afterwards, ms.
    pub cold_start_waits: Vec<u64>,
    pub max_replicas: u32,
    /// Scale-downs that left fewer replicas than the running tasks need.
    pub scale_ins_below_running: u32,
    /// When the run ended: all tasks done and the replicas back at their minimum.
    pub end_ms: u64,
    /// False if the run hit its time limit before settling.
    pub settled: bool,
    /// Tasks not finished when the run ended (ready or running; 0 when settled).
    pub unfinished: u64,
    /// Tasks still queued when the run was cut off; their time in the queue so far counts in
    /// `waits` (a lower bound of their wait).
    pub waiting_at_end: u64,
    pub series: Series,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    TaskDone { pod: u32, item: u64 },
    GraceOver { pod: u32 },
    PodReady { pod: u32 },
    Push,
    KedaPoll,
    HpaSync,
}

impl Ev {
    fn class(self) -> u8 {
        match self {
            Ev::TaskDone { .. } => 0,
            Ev::GraceOver { .. } => 1,
            Ev::PodReady { .. } => 2,
            Ev::Push => 4,
            Ev::KedaPoll => 5,
            Ev::HpaSync => 6,
        }
    }
}
/// Arrivals sort between pod readiness and pushes.
const ARRIVAL_CLASS: u8 = 3;

#[derive(Debug, Clone, Copy)]
struct Pending {
    ready_at: u64,
    count: u64,
    /// Task number of the first task (for drawn durations).
    first: u64,
    duration_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: u64,
    count: u32,
    duration_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    Starting,
    Running,
    Draining,
    Gone,
}

#[derive(Debug, Clone)]
struct Pod {
    state: PodState,
    busy: u32,
    inflight: Vec<InFlight>,
}

/// How long past the trace's end a run may go before it is cut off: a policy that has not
/// finished the work an hour after the last arrival is not keeping up (or never will: see the
/// livelock of a ready-only metric with tasks longer than the cooldown).
pub const SETTLE_LIMIT_MS: u64 = 3_600_000;

struct Sim<'a> {
    trace: &'a Trace,
    policy: &'a Policy,
    w: &'a Workload,
    target: f64,
    now: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<(u64, u8, u64, Ev)>>,
    next_arrival: usize,
    next_task: u64,
    queue: VecDeque<Pending>,
    ready: u64,
    running: u64,
    pods: Vec<Pod>,
    /// Running pods in the order they became ready.
    running_pods: Vec<u32>,
    /// Starting pods in the order they were created.
    starting_pods: Vec<u32>,
    alive: u32,
    draining: u32,
    free_slots: u64,
    cursor: usize,
    spec: u32,
    keda: Keda,
    hpa: Hpa,
    push_active: bool,
    /// Tasks are waiting while there are no replicas: the next claim ends a cold start.
    cold: bool,
    last_polled_metric: f64,
    next_item: u64,
    last_account: u64,
    out: Outcome,
}

/// Runs one policy over a trace. `progress` is called with the simulated time reached, now and
/// then (at most once per chart bucket).
pub fn simulate(
    trace: &Trace,
    policy: &Policy,
    w: &Workload,
    phases: Phases,
    bucket_ms: u64,
    progress: &dyn Fn(u64),
) -> Outcome {
    let keda = Keda::new(
        policy.min_replica_count,
        u64::from(policy.cooldown_period) * 1000,
    );
    let hpa = Hpa::new(
        keda.hpa_min_replicas(),
        policy.max_replica_count,
        policy.behavior.clone(),
    )
    .with_tolerance(policy.tolerance);
    let mut sim = Sim {
        trace,
        policy,
        w,
        target: policy.target(w.concurrency),
        now: 0,
        seq: 0,
        heap: BinaryHeap::new(),
        next_arrival: 0,
        next_task: 0,
        queue: VecDeque::new(),
        ready: 0,
        running: 0,
        pods: Vec::new(),
        running_pods: Vec::new(),
        starting_pods: Vec::new(),
        alive: 0,
        draining: 0,
        free_slots: 0,
        cursor: 0,
        spec: 0,
        keda,
        hpa,
        push_active: false,
        cold: false,
        last_polled_metric: 0.0,
        next_item: 0,
        last_account: 0,
        out: Outcome {
            policy: policy.name.clone(),
            tasks: trace.tasks,
            starts: 0,
            handed_back: 0,
            waits: Vec::new(),
            within_slo: 0,
            pod_ms: 0,
            busy_task_ms: 0,
            scale_events: Vec::new(),
            cold_start_waits: Vec::new(),
            max_replicas: 0,
            scale_ins_below_running: 0,
            end_ms: 0,
            settled: false,
            unfinished: 0,
            waiting_at_end: 0,
            series: Series {
                bucket_ms: bucket_ms.max(1),
                ..Series::default()
            },
        },
    };
    sim.start(phases);
    sim.run(progress);
    sim.finish()
}

impl<'a> Sim<'a> {
    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, ev.class(), self.seq, ev)));
    }

    fn start(&mut self, phases: Phases) {
        // Warm pods for minReplicaCount > 0: they exist and are ready from the start.
        let warm = self.policy.min_replica_count;
        for _ in 0..warm {
            let id = self.new_pod(PodState::Running);
            self.running_pods.push(id);
            self.free_slots += u64::from(self.w.concurrency);
        }
        self.spec = warm;
        self.out.max_replicas = warm;
        let poll_ms = u64::from(self.policy.polling_interval) * 1000;
        let sync_ms = u64::from(self.policy.hpa_sync_period) * 1000;
        self.schedule((phases.poll * poll_ms as f64) as u64, Ev::KedaPoll);
        self.schedule((phases.hpa * sync_ms as f64) as u64, Ev::HpaSync);
        self.observe();
    }

    fn new_pod(&mut self, state: PodState) -> u32 {
        let id = self.pods.len() as u32;
        self.pods.push(Pod {
            state,
            busy: 0,
            inflight: Vec::new(),
        });
        self.alive += 1;
        id
    }

    fn run(&mut self, progress: &dyn Fn(u64)) {
        let limit = self.trace.end_ms + SETTLE_LIMIT_MS;
        loop {
            let heap_next = self.heap.peek().map(|Reverse((t, c, _, _))| (*t, *c));
            let arrival_next = self
                .trace
                .arrivals
                .get(self.next_arrival)
                .map(|a| (a.at_ms, ARRIVAL_CLASS));
            let take_arrival = match (heap_next, arrival_next) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(h), Some(a)) => a < h,
            };
            let at = if take_arrival {
                arrival_next.map(|a| a.0)
            } else {
                heap_next.map(|h| h.0)
            };
            let Some(at) = at else { break };
            if at > limit {
                self.advance(limit, progress);
                self.out.end_ms = limit;
                return;
            }
            self.advance(at, progress);
            if take_arrival {
                self.arrive();
            } else if let Some(Reverse((_, _, _, ev))) = self.heap.pop() {
                self.handle(ev);
            }
            self.after_event();
            if self.quiet() {
                let end = self.now.max(self.trace.end_ms);
                self.advance(end, progress);
                self.out.end_ms = end;
                self.out.settled = true;
                return;
            }
        }
    }

    /// All tasks arrived and done, nothing draining, and the replicas at their floor.
    fn quiet(&self) -> bool {
        self.next_arrival == self.trace.arrivals.len()
            && self.ready == 0
            && self.running == 0
            && self.draining == 0
            && self.starting_pods.is_empty()
            && self.spec == self.policy.min_replica_count
            && self.alive == self.spec
    }

    /// Moves the clock to `at`, accounting pod time and filling chart buckets.
    fn advance(&mut self, at: u64, progress: &dyn Fn(u64)) {
        if at <= self.now {
            return;
        }
        let dt = u128::from(at - self.last_account);
        self.out.pod_ms += u128::from(self.alive) * dt;
        self.out.busy_task_ms += u128::from(self.running) * dt;
        self.last_account = at;
        self.now = at;
        let bucket = (at / self.out.series.bucket_ms) as usize;
        if bucket + 1 > self.out.series.ready.len() {
            progress(at);
            self.observe();
        }
    }

    /// Records the current state into the current bucket's maxima.
    fn observe(&mut self) {
        let s = &mut self.out.series;
        let bucket = (self.now / s.bucket_ms) as usize;
        while s.ready.len() <= bucket {
            s.ready.push(self.ready);
            s.running.push(self.running);
            s.replicas.push(self.spec);
            s.pods.push(self.alive);
        }
        let i = bucket;
        s.ready[i] = s.ready[i].max(self.ready);
        s.running[i] = s.running[i].max(self.running);
        s.replicas[i] = s.replicas[i].max(self.spec);
        s.pods[i] = s.pods[i].max(self.alive);
    }

    fn after_event(&mut self) {
        self.observe();
        // StreamIsActive: push on the rising edge of activity.
        if let Activation::Push { latency_ms } = self.policy.activation {
            let active = self.metric() > self.policy.activation_threshold;
            if active && !self.push_active {
                self.schedule(self.now + latency_ms, Ev::Push);
            }
            self.push_active = active;
        }
    }

    fn metric(&self) -> f64 {
        match self.policy.metric {
            Metric::Ready => self.ready as f64,
            Metric::ReadyAndRunning => (self.ready + self.running) as f64,
        }
    }

    fn arrive(&mut self) {
        let a = self.trace.arrivals[self.next_arrival];
        self.next_arrival += 1;
        let count = u64::from(a.count);
        self.queue.push_back(Pending {
            ready_at: a.at_ms,
            count,
            first: self.next_task,
            duration_ms: a.duration_ms,
        });
        self.next_task += count;
        self.ready += count;
        if self.spec == 0 {
            self.cold = true;
        }
        self.dispatch();
    }

    /// Hands ready tasks to running pods with free slots, starting after the last pod served.
    fn dispatch(&mut self) {
        let n = self.running_pods.len();
        if self.ready == 0 || self.free_slots == 0 || n == 0 {
            return;
        }
        for k in 0..n {
            let idx = (self.cursor + k) % n;
            let pod = self.running_pods[idx];
            let free = self.w.concurrency - self.pods[pod as usize].busy;
            if free > 0 {
                self.claim(pod, free);
                if self.ready == 0 {
                    self.cursor = (idx + 1) % n;
                    return;
                }
            }
        }
    }

    /// Pod `pod` claims up to `max` ready tasks, oldest first.
    fn claim(&mut self, pod: u32, max: u32) {
        let mut want = u64::from(max).min(self.ready);
        if want > 0 && self.cold {
            self.cold = false;
            if let Some(front) = self.queue.front() {
                self.out.cold_start_waits.push(self.now - front.ready_at);
            }
        }
        let constant = self.w.task_duration.constant_ms();
        while want > 0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            let take = want.min(front.count);
            let wait = self.now - front.ready_at;
            match self.out.waits.last_mut() {
                Some((w, c)) if *w == wait => *c += take,
                _ => self.out.waits.push((wait, take)),
            }
            if wait <= self.w.slo_wait_ms {
                self.out.within_slo += take;
            }
            let (first, fixed) = (front.first, front.duration_ms.or(constant));
            front.count -= take;
            front.first += take;
            if front.count == 0 {
                self.queue.pop_front();
            }
            match fixed {
                Some(d) => self.start_item(pod, take as u32, d),
                None => {
                    for i in 0..take {
                        let d = self.w.task_duration.sample_ms(self.w.seed, first + i);
                        self.start_item(pod, 1, d);
                    }
                }
            }
            self.ready -= take;
            self.running += take;
            self.free_slots -= take;
            self.out.starts += take;
            self.pods[pod as usize].busy += take as u32;
            want -= take;
        }
    }

    fn start_item(&mut self, pod: u32, count: u32, duration_ms: u64) {
        self.next_item += 1;
        let id = self.next_item;
        self.pods[pod as usize].inflight.push(InFlight {
            id,
            count,
            duration_ms,
        });
        self.schedule(self.now + duration_ms, Ev::TaskDone { pod, item: id });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::TaskDone { pod, item } => self.task_done(pod, item),
            Ev::GraceOver { pod } => self.grace_over(pod),
            Ev::PodReady { pod } => self.pod_ready(pod),
            Ev::Push => {
                if let Some(to) = self.keda.request_scale(self.now, true, self.spec) {
                    self.set_replicas(to, Actor::Keda);
                }
            }
            Ev::KedaPoll => {
                let metric = self.metric();
                self.last_polled_metric = metric;
                let active = metric > self.policy.activation_threshold;
                if let Some(to) = self.keda.request_scale(self.now, active, self.spec) {
                    self.set_replicas(to, Actor::Keda);
                }
                let next = self.now + u64::from(self.policy.polling_interval) * 1000;
                self.schedule(next, Ev::KedaPoll);
            }
            Ev::HpaSync => {
                let metric = if self.policy.use_cached_metrics {
                    self.last_polled_metric
                } else {
                    self.metric()
                };
                let sync = self
                    .hpa
                    .sync_external(self.now, self.spec, metric, self.target);
                if sync.replicas != self.spec {
                    self.set_replicas(sync.replicas, Actor::Hpa);
                }
                let next = self.now + u64::from(self.policy.hpa_sync_period) * 1000;
                self.schedule(next, Ev::HpaSync);
            }
        }
    }

    fn task_done(&mut self, pod_id: u32, item: u64) {
        let pod = &mut self.pods[pod_id as usize];
        let Some(pos) = pod.inflight.iter().position(|f| f.id == item) else {
            return; // handed back when its pod's grace ran out
        };
        let done = pod.inflight.swap_remove(pos);
        pod.busy -= done.count;
        self.running -= u64::from(done.count);
        match pod.state {
            PodState::Running => {
                self.free_slots += u64::from(done.count);
                if self.ready > 0 {
                    let free = self.w.concurrency - self.pods[pod_id as usize].busy;
                    self.claim(pod_id, free);
                }
            }
            PodState::Draining if pod.busy == 0 => self.pod_gone(pod_id),
            _ => {}
        }
    }

    fn grace_over(&mut self, pod_id: u32) {
        if self.pods[pod_id as usize].state != PodState::Draining {
            return;
        }
        let items = std::mem::take(&mut self.pods[pod_id as usize].inflight);
        for f in items {
            let n = u64::from(f.count);
            self.running -= n;
            self.ready += n;
            self.out.handed_back += n;
            // Handed back with run_at = now: behind every task already waiting.
            self.queue.push_back(Pending {
                ready_at: self.now,
                count: n,
                first: 0,
                duration_ms: Some(f.duration_ms),
            });
        }
        self.pods[pod_id as usize].busy = 0;
        self.pod_gone(pod_id);
        if self.spec == 0 && self.ready > 0 {
            self.cold = true;
        }
        self.dispatch();
    }

    fn pod_ready(&mut self, pod_id: u32) {
        if self.pods[pod_id as usize].state != PodState::Starting {
            return; // deleted while starting
        }
        self.pods[pod_id as usize].state = PodState::Running;
        self.starting_pods.retain(|&p| p != pod_id);
        self.running_pods.push(pod_id);
        self.free_slots += u64::from(self.w.concurrency);
        if self.ready > 0 {
            self.claim(pod_id, self.w.concurrency);
        }
    }

    fn pod_gone(&mut self, pod_id: u32) {
        let pod = &mut self.pods[pod_id as usize];
        if pod.state == PodState::Draining {
            self.draining -= 1;
        }
        pod.state = PodState::Gone;
        self.alive -= 1;
    }

    fn set_replicas(&mut self, to: u32, by: Actor) {
        let from = self.spec;
        if to == from {
            return;
        }
        self.out.scale_events.push(ScaleEvent {
            at_ms: self.now,
            from,
            to,
            by,
            running_tasks: self.running,
        });
        self.spec = to;
        self.out.max_replicas = self.out.max_replicas.max(to);
        if to > from {
            for _ in from..to {
                let id = self.new_pod(PodState::Starting);
                self.starting_pods.push(id);
                self.schedule(self.now + self.w.startup_delay_ms, Ev::PodReady { pod: id });
            }
            return;
        }
        if u64::from(to) * u64::from(self.w.concurrency) < self.running {
            self.out.scale_ins_below_running += 1;
        }
        for _ in to..from {
            // The ReplicaSet deletes pods that are not ready first, then the newest ready ones.
            if let Some(id) = self.starting_pods.pop() {
                self.pod_gone(id);
                continue;
            }
            let Some(id) = self.running_pods.pop() else {
                break;
            };
            let pod = &mut self.pods[id as usize];
            self.free_slots -= u64::from(self.w.concurrency - pod.busy);
            pod.state = PodState::Draining;
            self.draining += 1;
            if pod.busy == 0 {
                self.pod_gone(id);
            } else {
                self.schedule(
                    self.now + self.w.shutdown_grace_ms,
                    Ev::GraceOver { pod: id },
                );
            }
        }
        if !self.running_pods.is_empty() {
            self.cursor %= self.running_pods.len();
        } else {
            self.cursor = 0;
        }
    }

    fn finish(mut self) -> Outcome {
        // Tasks still queued at a cut-off have waited at least this long: count them, so a
        // policy that never starts tasks cannot look good.
        self.out.unfinished = self.ready + self.running;
        self.out.waiting_at_end = self.ready;
        for p in std::mem::take(&mut self.queue) {
            self.out.waits.push((self.out.end_ms - p.ready_at, p.count));
            if self.out.end_ms - p.ready_at <= self.w.slo_wait_ms {
                self.out.within_slo += p.count;
            }
        }
        self.out.waits.sort_unstable_by_key(|&(w, _)| w);
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.out.waits.len().min(1 << 16));
        for (w, c) in self.out.waits.drain(..) {
            match merged.last_mut() {
                Some((lw, lc)) if *lw == w => *lc += c,
                _ => merged.push((w, c)),
            }
        }
        self.out.waits = merged;
        self.out
    }
}

impl Outcome {
    /// Wait at quantile `q` (nearest rank), ms.
    pub fn wait_quantile_ms(&self, q: f64) -> u64 {
        let total: u64 = self.waits.iter().map(|&(_, c)| c).sum();
        if total == 0 {
            return 0;
        }
        // The epsilon keeps q × total from rounding up past an exact integer rank.
        let rank = ((q * total as f64 - 1e-9).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for &(w, c) in &self.waits {
            seen += c;
            if seen >= rank {
                return w;
            }
        }
        self.waits.last().map(|&(w, _)| w).unwrap_or(0)
    }

    pub fn wait_max_ms(&self) -> u64 {
        self.waits.last().map(|&(w, _)| w).unwrap_or(0)
    }

    pub fn wait_mean_ms(&self) -> f64 {
        let total: u64 = self.waits.iter().map(|&(_, c)| c).sum();
        if total == 0 {
            return 0.0;
        }
        let sum: u128 = self
            .waits
            .iter()
            .map(|&(w, c)| u128::from(w) * u128::from(c))
            .sum();
        sum as f64 / total as f64
    }

    pub fn scale_ups(&self) -> usize {
        self.scale_events.iter().filter(|e| e.to > e.from).count()
    }

    pub fn scale_downs(&self) -> usize {
        self.scale_events.iter().filter(|e| e.to < e.from).count()
    }

    /// Share of task starts that met the wait SLO.
    pub fn slo_ratio(&self) -> f64 {
        let samples = self.starts + self.waiting_at_end;
        if samples == 0 {
            1.0
        } else {
            self.within_slo as f64 / samples as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::workload::DurationModel;

    fn workload() -> Workload {
        Workload {
            concurrency: 4,
            task_duration: DurationModel::Constant { ms: 1_000 },
            startup_delay_ms: 10_000,
            shutdown_grace_ms: 25_000,
            slo_wait_ms: 30_000,
            seed: 1,
        }
    }

    fn policy(name: &str) -> Policy {
        Policy::builtins()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap()
    }

    fn run(text: &str, p: &Policy, w: &Workload, phases: Phases) -> Outcome {
        let trace = Trace::parse("t.csv", text).unwrap();
        simulate(&trace, p, w, phases, 1_000, &|_| {})
    }

    const ZERO: Phases = Phases {
        poll: 0.0,
        hpa: 0.0,
    };

    #[test]
    fn push_activation_starts_a_worker_one_startup_delay_after_the_first_task() {
        let p = policy("flowforge-push-recommended");
        let out = run("7,1\n", &p, &workload(), ZERO);
        // Push at 7.1 s → KEDA sets 1 replica → ready at 17.1 s → the task waited 10.1 s.
        assert_eq!(out.waits, vec![(10_100, 1)]);
        assert_eq!(out.scale_events[0].at_ms, 7_100);
        assert_eq!(out.scale_events[0].by, Actor::Keda);
        assert!(out.settled);
        // Back to zero: the last active poll is at 15 s or later, cooldown 60 s.
        let last = out.scale_events.last().unwrap();
        assert_eq!((last.from, last.to, last.by), (1, 0, Actor::Keda));
    }

    #[test]
    fn poll_activation_waits_for_the_next_poll() {
        let p = policy("keda-postgresql-default");
        let out = run("7,1\n", &p, &workload(), ZERO);
        // Polls at 0, 30, 60 s: active at 30 s → ready at 40 s → the task waited 33 s.
        assert_eq!(out.waits, vec![(33_000, 1)]);
        assert_eq!(out.within_slo, 0);
        // Cooldown: last active poll 30 s (the task ran 40–41 s; the poll at 60 s is idle);
        // zero at the first poll after 330 s, i.e. 360 s.
        let last = out.scale_events.last().unwrap();
        assert_eq!((last.at_ms, last.to), (360_000, 0));
        assert_eq!(out.end_ms, 360_000);
        // The pod lived from 30 s to 360 s.
        assert_eq!(out.pod_ms, 330_000);
    }

    #[test]
    fn the_hpa_scales_out_by_its_rate_policies_and_workers_share_the_queue() {
        let p = policy("flowforge-push-recommended");
        let w = Workload {
            task_duration: DurationModel::Constant { ms: 60_000 },
            ..workload()
        };
        let out = run("1,40\n", &p, &w, ZERO);
        let ups: Vec<(u64, u32, u32)> = out
            .scale_events
            .iter()
            .filter(|e| e.to > e.from)
            .map(|e| (e.at_ms, e.from, e.to))
            .collect();
        // Push at 1.1 s → 1; HPA at 15 s: ceil(40 / 4) = 10, limited to 1 + 4 = 5; 30 s: 10.
        assert_eq!(ups, vec![(1_100, 0, 1), (15_000, 1, 5), (30_000, 5, 10)]);
        assert_eq!(out.max_replicas, 10);
        assert_eq!(out.starts, 40);
        assert_eq!(out.scale_ins_below_running, 0);
    }

    #[test]
    fn scale_in_drains_and_hands_back_tasks_past_the_grace_period() {
        // The ready-only metric lets the HPA remove workers that are still running tasks.
        let mut p = policy("keda-postgresql-default");
        p.behavior.scale_down.stabilization_window_s = 0;
        let w = Workload {
            task_duration: DurationModel::Constant { ms: 100_000 },
            ..workload()
        };
        let out = run("0,8\n", &p, &w, ZERO);
        // KEDA activates at 0 s; the HPA at 0 s sees 8 ready → 2 replicas. Ready at 10 s, both
        // claim 4; at 15 s the HPA sees 0 ready → 1 replica: the newest pod drains, its 4 tasks
        // are handed back at 40 s and wait for a free slot.
        assert_eq!(out.handed_back, 4);
        assert!(out.scale_ins_below_running >= 1);
        assert_eq!(out.starts, 12);
        assert!(out.settled);
    }

    #[test]
    fn warm_minimum_replicas_take_tasks_at_once() {
        let mut p = policy("flowforge-push-recommended");
        p.min_replica_count = 1;
        let out = run("3,2\n100,0\n", &p, &workload(), ZERO);
        assert_eq!(out.waits, vec![(0, 2)]);
        assert_eq!(out.end_ms, 100_000);
        assert_eq!(out.pod_ms, 100_000);
    }

    #[test]
    fn wait_quantiles_use_nearest_rank() {
        let mut out = run(
            "0,1\n",
            &policy("keda-postgresql-default"),
            &workload(),
            ZERO,
        );
        out.waits = vec![(0, 50), (1_000, 45), (9_000, 4), (20_000, 1)];
        assert_eq!(out.wait_quantile_ms(0.5), 0);
        assert_eq!(out.wait_quantile_ms(0.95), 1_000);
        assert_eq!(out.wait_quantile_ms(0.99), 9_000);
        assert_eq!(out.wait_quantile_ms(1.0), 20_000);
        assert_eq!(out.wait_max_ms(), 20_000);
    }
}
