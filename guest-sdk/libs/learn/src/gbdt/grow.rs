//! Growing one tree on binned data: gradient/hessian histograms per node,
//! the larger child's histogram by subtraction from its parent's, the best
//! split per node with a learned direction for missing values, depth-wise
//! (XGBoost's default) or loss-guided to `max_leaves` (LightGBM's).
//!
//! Gradients arrive **quantized** to integers (see `Quantized`): sums of
//! integers do not depend on the order they are added in, so a histogram
//! summed over rows split between workers equals the one summed in a single
//! process, and every worker — and every worker count — picks the same
//! splits. `reduce` is where such a sum across workers goes; one process
//! passes a function that does nothing.

use super::bins::Cuts;
use super::tree::{Node, Tree};
use wray_guest_core::Error;

/// A split must reduce the loss by more than this (XGBoost's `kRtEps`).
const MIN_SPLIT_LOSS: f64 = 1e-6;

/// Gradients and hessians as integers: `g ≈ qg / g_scale`.
pub(crate) struct Quantized {
    pub g: Vec<i64>,
    pub h: Vec<i64>,
    pub g_scale: f64,
    pub h_scale: f64,
}

impl Quantized {
    /// Scales are powers of two chosen so that `rows` of the largest
    /// magnitude sum within an `i64` (`max_g`, `max_h` and `rows` are over
    /// every worker's rows, so every worker picks the same scale).
    pub fn new(g: &[f64], h: &[f64], max_g: f64, max_h: f64, rows: usize) -> Quantized {
        let scale = |max: f64| {
            let room = (1u64 << 62) as f64 / (rows.max(1) as f64 * max.max(f64::MIN_POSITIVE));
            2f64.powi(room.log2().floor().clamp(-1000.0, 1000.0) as i32)
        };
        let (g_scale, h_scale) = (scale(max_g), scale(max_h));
        Quantized {
            // Truncation, not rounding: one instruction (rounding is a
            // library call in Wasm), and the scale leaves 2^62 / rows of
            // resolution, so the difference is noise.
            g: g.iter().map(|v| (v * g_scale) as i64).collect(),
            h: h.iter().map(|v| (v * h_scale) as i64).collect(),
            g_scale,
            h_scale,
        }
    }
}

/// The tree parameters (XGBoost's names).
#[derive(Clone, Debug)]
pub(crate) struct TreeParams {
    pub max_depth: usize,
    pub max_leaves: usize,
    pub lossguide: bool,
    pub min_child_weight: f64,
    pub min_child_samples: i64,
    pub gamma: f64,
    pub reg_lambda: f64,
    pub reg_alpha: f64,
    pub learning_rate: f64,
}

impl TreeParams {
    fn threshold_l1(&self, g: f64) -> f64 {
        if g > self.reg_alpha {
            g - self.reg_alpha
        } else if g < -self.reg_alpha {
            g + self.reg_alpha
        } else {
            0.0
        }
    }
    fn gain(&self, g: f64, h: f64) -> f64 {
        let t = self.threshold_l1(g);
        t * t / (h + self.reg_lambda)
    }
    fn weight(&self, g: f64, h: f64) -> f64 {
        -self.threshold_l1(g) / (h + self.reg_lambda) * self.learning_rate
    }
}

/// The binned training rows.
pub(crate) struct Binned<'a> {
    /// Column-major (`columns[f * rows + r]`): histograms are built and
    /// rows split a feature at a time; read from row-major bins, each row's
    /// byte of one feature would cost a cache line of its own.
    pub columns: &'a [u8],
    pub rows: usize,
    pub cols: usize,
    pub cuts: &'a Cuts,
    /// Where each feature's histogram block starts (block: missing, then
    /// its real bins).
    pub offsets: Vec<usize>,
}

impl<'a> Binned<'a> {
    pub fn new(columns: &'a [u8], cols: usize, cuts: &'a Cuts) -> Binned<'a> {
        let mut offsets = Vec::with_capacity(cols + 1);
        let mut at = 0;
        for f in 0..cols {
            offsets.push(at);
            at += cuts.bins(f) + 1;
        }
        offsets.push(at);
        Binned { columns, rows: columns.len() / cols.max(1), cols, cuts, offsets }
    }
    fn hist_len(&self) -> usize {
        self.offsets[self.cols]
    }
}

/// A histogram: per (feature, bin), the sums of quantized g and h and the
/// rows.
type Hist = Vec<Sums>;

/// Quantized gradient, quantized hessian, and rows.
type Sums = [i64; 3];

fn minus(a: Sums, b: Sums) -> Sums {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn plus(a: Sums, b: Sums) -> Sums {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// The best split of a node.
#[derive(Clone, Copy, Debug)]
struct Best {
    loss_chg: f64,
    feature: usize,
    /// Split after real bin `bin` (0-based): bins 0..=bin go left.
    bin: usize,
    default_left: bool,
    left: Sums,
}

/// A node while the tree grows.
struct Grow {
    /// Its rows: `rows[start..end]` of the partition.
    start: usize,
    end: usize,
    depth: usize,
    sum: Sums,
    hist: Option<Hist>,
    best: Option<Best>,
    /// Its index in the tree's nodes.
    node: usize,
}

/// A grown tree and where its training rows ended up.
pub(crate) struct Grown {
    pub tree: Tree,
    /// The rows, partitioned: each leaf's are one range.
    pub rows: Vec<u32>,
    /// Per leaf: its node and its range of `rows` (meaningless after gamma
    /// pruning, which merges leaves: `pruned` says so).
    pub leaves: Vec<(usize, usize, usize)>,
    pub pruned: bool,
}

/// Histogram buffers of split and finished nodes, reused: a tree needs a new
/// one per split, and allocating (and faulting in) each cost more than
/// zeroing an old one.
struct Pool(Vec<Hist>);

impl Pool {
    fn take(&mut self, len: usize) -> Hist {
        match self.0.pop() {
            Some(mut h) => {
                h.clear();
                h.resize(len, [0; 3]);
                h
            }
            None => vec![[0; 3]; len],
        }
    }
    fn give(&mut self, h: Option<Hist>) {
        self.0.extend(h);
    }
}

/// Grows one tree over `rows` (this worker's sampled rows) and `features`
/// (the sampled columns, ascending). `reduce` sums a buffer of histogram
/// integers (and node totals) across workers in place; `None` when this
/// process holds every row.
pub(crate) fn grow(
    data: &Binned<'_>,
    mut rows: Vec<u32>,
    q: &Quantized,
    features: &[usize],
    p: &TreeParams,
    mut reduce: Option<Reduce<'_>>,
) -> Result<Grown, Error> {
    let mut nodes: Vec<Node> = Vec::new();
    // Each node's sums, beside `nodes`, for pruning.
    let mut sums: Vec<Sums> = Vec::new();
    let mut sum: Sums = [0, 0, rows.len() as i64];
    for &r in &rows {
        sum[0] += q.g[r as usize];
        sum[1] += q.h[r as usize];
    }
    sum_across(&mut reduce, &mut sum)?;
    let mut pool = Pool(Vec::new());
    let mut hist = pool.take(data.hist_len());
    build(data, &rows, q, features, &mut hist);
    sum_across(&mut reduce, hist.as_flattened_mut())?;
    nodes.push(leaf(p, q, sum));
    sums.push(sum);
    let n = rows.len();
    let mut scratch: Vec<u32> = Vec::with_capacity(n);
    let mut leaves: Vec<(usize, usize, usize)> = Vec::new();
    let mut root = Grow { start: 0, end: n, depth: 0, sum, hist: Some(hist), best: None, node: 0 };
    root.best = best_split(data, root.hist.as_ref().expect("built"), root.sum, q, features, p);
    let depth_ok = |d: usize| p.max_depth == 0 || d < p.max_depth;
    let splits = |g: &Grow| depth_ok(g.depth) && g.best.is_some_and(|b| b.loss_chg > MIN_SPLIT_LOSS);
    let mut ctx =
        SplitCtx { data, q, features, p, nodes: &mut nodes, sums: &mut sums, scratch: &mut scratch, pool: &mut pool };
    if p.lossguide {
        // Expand the leaf whose split reduces the loss most, ties to the
        // older leaf (the lower node number), until `max_leaves`.
        let mut open: Vec<Grow> = vec![root];
        let mut count = 1;
        while p.max_leaves == 0 || count < p.max_leaves {
            let pick = open
                .iter()
                .enumerate()
                .filter(|(_, g)| splits(g))
                .max_by(|(_, a), (_, b)| {
                    let (x, y) = (a.best.expect("filtered").loss_chg, b.best.expect("filtered").loss_chg);
                    x.total_cmp(&y).then(b.node.cmp(&a.node))
                })
                .map(|(i, _)| i);
            let Some(i) = pick else { break };
            let parent = open.swap_remove(i);
            let mut halfway = split_rows(&mut ctx, &mut rows, parent);
            sum_across(&mut reduce, halfway.small.as_flattened_mut())?;
            for mut c in halfway.finish() {
                if depth_ok(c.depth) {
                    c.best = best_split(data, c.hist.as_ref().expect("built"), c.sum, q, features, p);
                }
                open.push(c);
            }
            count += 1;
        }
        leaves.extend(open.iter().map(|g| (g.node, g.start, g.end)));
    } else {
        let mut level = vec![root];
        while !level.is_empty() {
            let mut halfway = Vec::new();
            for g in level {
                if splits(&g) {
                    halfway.push(split_rows(&mut ctx, &mut rows, g));
                } else {
                    leaves.push((g.node, g.start, g.end));
                    ctx.pool.give(g.hist);
                }
            }
            // One sum across the workers for the whole level (XGBoost's
            // way): a worker waits for the others once a level rather than
            // once a node — on 1 M rows, 6 waits a tree instead of 63, which
            // cost a third of a round. Every worker splits the same nodes
            // (the histograms are the same), so all reduce alike.
            if let (false, Some(reduce)) = (halfway.is_empty(), reduce.as_mut()) {
                let len = data.hist_len() * 3;
                let mut all: Vec<i64> = Vec::with_capacity(halfway.len() * len);
                for h in &halfway {
                    all.extend_from_slice(h.small.as_flattened());
                }
                reduce(&mut all)?;
                for (h, summed) in halfway.iter_mut().zip(all.chunks_exact(len)) {
                    h.small.as_flattened_mut().copy_from_slice(summed);
                }
            }
            let mut next: Vec<Grow> = halfway.into_iter().flat_map(Halfway::finish).collect();
            for c in &mut next {
                if depth_ok(c.depth) {
                    c.best = best_split(data, c.hist.as_ref().expect("built"), c.sum, q, features, p);
                }
            }
            level = next;
        }
    }
    let mut tree = Tree { nodes };
    let pruned = prune(&mut tree, &sums, q, p);
    Ok(Grown { tree, rows, leaves, pruned })
}

/// What splitting needs besides the node.
struct SplitCtx<'a, 'b> {
    data: &'a Binned<'b>,
    q: &'a Quantized,
    features: &'a [usize],
    p: &'a TreeParams,
    nodes: &'a mut Vec<Node>,
    sums: &'a mut Vec<Sums>,
    scratch: &'a mut Vec<u32>,
    pool: &'a mut Pool,
}

/// A node split on this worker: its rows partitioned, the split recorded in
/// the tree, the smaller child's histogram built from this worker's rows
/// (not yet summed across workers).
struct Halfway {
    parent: Hist,
    small: Hist,
    left_smaller: bool,
    children: [Grow; 2],
}

impl Halfway {
    /// The children, once `small` holds every worker's sum: the larger
    /// child's histogram is the parent's minus the smaller's.
    fn finish(self) -> [Grow; 2] {
        let Halfway { mut parent, small, left_smaller, mut children } = self;
        for (l, s) in parent.iter_mut().zip(&small) {
            *l = minus(*l, *s);
        }
        let (lh, rh) = if left_smaller { (small, parent) } else { (parent, small) };
        children[0].hist = Some(lh);
        children[1].hist = Some(rh);
        children
    }
}

/// Splits a node: partitions its rows, builds the smaller child's histogram
/// (the smaller by rows counted over every worker, so that all agree) and
/// records the split in the tree; [`Halfway::finish`] makes the children
/// once the histogram is summed.
fn split_rows(ctx: &mut SplitCtx<'_, '_>, rows: &mut [u32], parent: Grow) -> Halfway {
    let SplitCtx { data, q, features, p, .. } = *ctx;
    let best = parent.best.expect("a split node has a best split");
    let parent_hist = parent.hist.expect("a split node has its histogram");
    let right_sum = minus(parent.sum, best.left);
    // Stable partition of the parent's rows, in place: left ones move down
    // (never past where they are read), right ones wait in `scratch`.
    let f = best.feature;
    let column = &data.columns[f * data.rows..(f + 1) * data.rows];
    let goes_left = |r: u32| {
        let b = column[r as usize] as usize;
        if b == 0 { best.default_left } else { b - 1 <= best.bin }
    };
    let scratch = &mut *ctx.scratch;
    scratch.clear();
    let mut write = parent.start;
    for read in parent.start..parent.end {
        let r = rows[read];
        if goes_left(r) {
            rows[write] = r;
            write += 1;
        } else {
            scratch.push(r);
        }
    }
    let mid = write;
    rows[mid..parent.end].copy_from_slice(scratch);
    let (li, ri) = (ctx.nodes.len(), ctx.nodes.len() + 1);
    ctx.nodes.push(leaf(p, q, best.left));
    ctx.nodes.push(leaf(p, q, right_sum));
    ctx.sums.extend([best.left, right_sum]);
    ctx.nodes[parent.node] = Node::Split {
        feature: f as u32,
        threshold: data.cuts.cuts[f][best.bin],
        default_left: best.default_left,
        left: li as u32,
        right: ri as u32,
        gain: best.loss_chg,
        cover: parent.sum[1] as f64 / q.h_scale,
    };
    let left_smaller = best.left[2] <= right_sum[2];
    let small_rows = if left_smaller { &rows[parent.start..mid] } else { &rows[mid..parent.end] };
    let mut small = ctx.pool.take(data.hist_len());
    build(data, small_rows, q, features, &mut small);
    let d = parent.depth + 1;
    Halfway {
        parent: parent_hist,
        small,
        left_smaller,
        children: [
            Grow { start: parent.start, end: mid, depth: d, sum: best.left, hist: None, best: None, node: li },
            Grow { start: mid, end: parent.end, depth: d, sum: right_sum, hist: None, best: None, node: ri },
        ],
    }
}

fn leaf(p: &TreeParams, q: &Quantized, sum: Sums) -> Node {
    let (g, h) = (sum[0] as f64 / q.g_scale, sum[1] as f64 / q.h_scale);
    Node::Leaf { value: p.weight(g, h), cover: h }
}

/// Features whose histograms one pass over a node's rows fills at once.
const FEATURES_PER_PASS: usize = 4;

/// Adds `rows`' quantized gradients per (feature, bin) to `hist` (zeroed).
///
/// A few features at a time (LightGBM's way, column by column): the node's
/// gradients are gathered in row order first, then each pass reads
/// [`FEATURES_PER_PASS`] features' bins from their columns and sums into
/// their blocks of the histogram, which stay in the L1 cache — a row at a
/// time, the updates spread over every feature's block (about 170 KiB for
/// 28 features). Several features per pass keep several independent chains
/// of additions going when consecutive rows fall in one bin. Integer sums,
/// so the order rows are added in changes nothing.
fn build(data: &Binned<'_>, rows: &[u32], q: &Quantized, features: &[usize], hist: &mut Hist) {
    let gh: Vec<(i64, i64)> = rows.iter().map(|&r| (q.g[r as usize], q.h[r as usize])).collect();
    let column = |f: usize| &data.columns[f * data.rows..(f + 1) * data.rows];
    let add = |cell: &mut Sums, (g, h): (i64, i64)| {
        cell[0] += g;
        cell[1] += h;
        cell[2] += 1;
    };
    for group in features.chunks(FEATURES_PER_PASS) {
        if let &[a, b, c, d] = group {
            let (ca, cb, cc, cd) = (column(a), column(b), column(c), column(d));
            let (oa, ob, oc, od) = (data.offsets[a], data.offsets[b], data.offsets[c], data.offsets[d]);
            for (&r, &v) in rows.iter().zip(&gh) {
                let r = r as usize;
                add(&mut hist[oa + ca[r] as usize], v);
                add(&mut hist[ob + cb[r] as usize], v);
                add(&mut hist[oc + cc[r] as usize], v);
                add(&mut hist[od + cd[r] as usize], v);
            }
        } else {
            for &f in group {
                let (col, block) = (column(f), &mut hist[data.offsets[f]..data.offsets[f + 1]]);
                for (&r, &v) in rows.iter().zip(&gh) {
                    add(&mut block[col[r as usize] as usize], v);
                }
            }
        }
    }
}

/// Sums a buffer across the workers.
pub(crate) type Reduce<'a> = &'a mut dyn FnMut(&mut [i64]) -> Result<(), Error>;

fn sum_across(reduce: &mut Option<Reduce<'_>>, v: &mut [i64]) -> Result<(), Error> {
    match reduce {
        Some(reduce) => reduce(v),
        None => Ok(()),
    }
}

/// The split that reduces the loss most; ties go to the lower feature, then
/// the lower bin, then missing values to the right — the same on every
/// worker, since the histograms are.
fn best_split(
    data: &Binned<'_>,
    hist: &Hist,
    sum: Sums,
    q: &Quantized,
    features: &[usize],
    p: &TreeParams,
) -> Option<Best> {
    // Scales are powers of two: multiplying by the inverse is exact.
    let (gi, hi) = (1.0 / q.g_scale, 1.0 / q.h_scale);
    let to = |s: Sums| (s[0] as f64 * gi, s[1] as f64 * hi);
    let (g, h) = to(sum);
    let parent = p.gain(g, h);
    let mut best: Option<Best> = None;
    // Children that cannot hold min_child_samples rows or min_child_weight
    // of hessian are not candidates; in integers, so that the test is exact.
    let min_h = (p.min_child_weight * q.h_scale).ceil() as i64;
    let min_rows = p.min_child_samples.max(1);
    for &f in features {
        let nb = data.cuts.bins(f);
        let block = &hist[data.offsets[f]..data.offsets[f] + nb + 1];
        let missing = block[0];
        // With no missing value in the node, sending them left is the same
        // split: evaluate it once.
        let directions: &[bool] = if missing[2] == 0 { &[false] } else { &[false, true] };
        let mut acc: Sums = [0; 3];
        for b in 0..nb.saturating_sub(1) {
            let cell = block[b + 1];
            if cell[2] == 0 {
                // No row in this bin: the split after it is the one after
                // the bin before (which wins ties anyway). Deep nodes have
                // few rows, so most bins are skipped here.
                continue;
            }
            acc = plus(acc, cell);
            // The right side only shrinks from here on: once even the larger
            // right side (missing values right) is too small, stop.
            let right_most = minus(sum, acc);
            if right_most[1] < min_h || right_most[2] < min_rows {
                break;
            }
            for &default_left in directions {
                let left = if default_left { plus(acc, missing) } else { acc };
                let right = minus(sum, left);
                if left[1] < min_h || right[1] < min_h || left[2] < min_rows || right[2] < min_rows {
                    continue;
                }
                let ((gl, hl), (gr, hr)) = (to(left), to(right));
                let loss_chg = p.gain(gl, hl) + p.gain(gr, hr) - parent;
                if best.is_none_or(|b| loss_chg > b.loss_chg) {
                    best = Some(Best { loss_chg, feature: f, bin: b, default_left, left });
                }
            }
        }
    }
    best
}

/// XGBoost's `min_split_loss` (gamma) pruning: a split whose children are
/// both leaves and whose loss reduction is below gamma becomes a leaf again,
/// bottom up. The pruned nodes stay in the vector, unreachable.
fn prune(tree: &mut Tree, sums: &[Sums], q: &Quantized, p: &TreeParams) -> bool {
    if p.gamma <= 0.0 {
        return false;
    }
    let mut any = false;
    loop {
        let mut changed = false;
        for i in (0..tree.nodes.len()).rev() {
            let Node::Split { left, right, gain, .. } = tree.nodes[i] else { continue };
            let both_leaves = [left, right].iter().all(|c| matches!(tree.nodes[*c as usize], Node::Leaf { .. }));
            if both_leaves && gain < p.gamma {
                tree.nodes[i] = leaf(p, q, sums[i]);
                changed = true;
            }
        }
        if !changed {
            return any;
        }
        any = true;
    }
}
