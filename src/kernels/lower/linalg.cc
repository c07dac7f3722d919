// Lowerings of MatMul (numpy.matmul: 1-D operands, broadcast batch dims) and Gemm (transA,
// transB, alpha, beta, broadcast C); Conv lives in conv.cc and registers from here.
//
// Both ops become one batched product Y[b, i, j] = init(b, i, j) + alpha * sum_k A[b, i, k] *
// B[b, k, j], A and B seen through index maps (transposes, 1-D promotion and batch broadcasting
// are different maps onto the same buffers). Two basic schedules:
//   - axpy (B contiguous along j, the common case): the output is cut into tile_m x tile_n
//     blocks, the (batch, row block, column block) triples fused into the parallel loop. A block
//     is initialized, then for each tile_k slice of k, groups of R rows take U values of k at a
//     time: for j vectorized, Y[i + r, j] += A[i + r, k + u] * B[k + u, j] for the R x U pairs in
//     one loop body. The A values are loop invariants (lets), each B vector is loaded once for
//     the R rows, the block of Y stays in L1 and the B slice (tile_k x tile_n) is reused by every
//     row group of the block. k ascends within each output, as in the reference.
//   - dot (B contiguous along k, e.g. Gemm transB, or a single output column): each output is a
//     sum reduction over k, which the code generator vectorizes along k; blocks of tile_n columns
//     go outside the rows so that B's block stays in L2.
// Packed microkernels replace these later; these are the portable baseline (single thread on a
// Sapphire Rapids core: ~150 GFLOPS for a 512^3 MatMul, see LowerLinalgBench).
//
// Types: f32 and f64. Other types (integer MatMul) stay on the reference kernel.
#include <functional>

#include "kernels/lower/lower.h"
#include "kernels/lower/window.h"

namespace kiln::kernels {

void register_conv_lowering(Lowerings& l);  // conv.cc

namespace {

using jit::Expr;
using jit::Stmt;
using Batch = std::vector<Expr>;

// A matrix operand: element (batch, row, col) as a buffer index.
struct MatView {
  int buffer = 0;
  std::function<std::vector<Expr>(const Batch&, const Expr&, const Expr&)> index;
  bool col_unit = false;  // stride along col is the immediate 1
  bool row_unit = false;  // stride along row is the immediate 1
};

// Y[b, i, j] = init(b, i, j) + alpha * sum_k A[b, i, k] * B[b, k, j].
struct GemmSpec {
  jit::ScalarType type = jit::ScalarType::kF32;
  MatView a, b;
  std::vector<Expr> batch;  // extents of the output's batch dims
  Expr m, n, k;
  int y_buffer = 0;
  std::function<std::vector<Expr>(const Batch&, const Expr&, const Expr&)> y_index;
  std::function<Expr(const Batch&, const Expr&, const Expr&)> init;  // nullptr: zero
  double alpha = 1.0;
  int64_t m_c = 1, n_c = 1,
          k_c = 1;  // concrete sizes, for schedule choices only
};

bool is_one(const Expr& e) { return e->is_int_imm(1); }

Expr init_value(const GemmSpec& g, const Batch& b, const Expr& i, const Expr& j) {
  return g.init ? g.init(b, i, j) : jit::constant(0, g.type);
}

// The size of the block of `tile` starting at `start` along a dim of `extent`: the immediate
// extent when it is smaller than the tile, the immediate tile when every block is full (if
// `full_imm`), else a let-bound min.
Expr block_size(LowerContext& ctx, const Expr& extent, int64_t tile, const Expr& start,
                const std::string& hint, window::Lets& lets, bool full_imm = true) {
  if (extent->is_int_imm() && extent->ival < tile) return extent;
  if (full_imm && extent->is_int_imm() && extent->ival % tile == 0) return jit::imm(tile);
  Expr size = jit::min(jit::imm(tile), extent - start);
  if (size->is_int_imm()) return size;
  lets.push_back({ctx.fresh_var(hint), size});
  return jit::var(lets.back().first);
}

// The dot schedule: one reduction over k per output. Columns go in blocks of tile_n outside the
// rows, so a block of B's columns (contiguous along k) stays in L2 while every row of A uses it.
Stmt gemm_dot(LowerContext& ctx, const GemmSpec& g) {
  const int64_t tn = std::max(1, ctx.schedule().tile_n);
  std::vector<Expr> dims = g.batch;
  dims.push_back((g.n + (tn - 1)) / tn);
  dims.push_back(g.m);
  const size_t nb = g.batch.size();
  return loop_nest(
      ctx, dims,
      [&](const std::vector<Expr>& idx) {
        Batch b(idx.begin(), idx.begin() + long(nb));
        Expr j0 = idx[nb] * tn;
        const Expr& i = idx[nb + 1];
        window::Lets lets;
        Expr cols = block_size(ctx, g.n, tn, j0, "cols", lets);
        std::string jv = ctx.fresh_var("j"), kv = ctx.fresh_var("k");
        Expr j = j0 + jit::var(jv), k = jit::var(kv);
        Expr prod = jit::load(g.a.buffer, g.type, g.a.index(b, i, k)) *
                    jit::load(g.b.buffer, g.type, g.b.index(b, k, j));
        Expr sum = jit::reduce(jit::ReduceOp::kSum, {kv}, {g.k}, jit::constant(0, g.type), prod);
        if (g.alpha != 1.0) sum = sum * jit::fimm(g.alpha, g.type);
        Expr value = g.init ? sum + g.init(b, i, j) : sum;
        return window::wrap(
            lets, window::serial_loop(jv, cols, jit::store(g.y_buffer, g.y_index(b, i, j), value)));
      },
      /*vectorize=*/false, tn * std::max<int64_t>(g.k_c, 1));
}

// The axpy schedule (see the file comment).
Stmt gemm_axpy(LowerContext& ctx, const GemmSpec& g) {
  const Schedule& sc = ctx.schedule();
  const int64_t tm = std::max(1, sc.tile_m), tn = std::max<int64_t>(1, sc.tile_n),
                tk = std::max<int64_t>(1, sc.tile_k);
  const int64_t R = sc.vector_lanes >= 16 ? 4 : 2, U = 4;
  const size_t nb = g.batch.size();
  std::vector<Expr> dims = g.batch;
  dims.push_back((g.m + (tm - 1)) / tm);
  dims.push_back((g.n + (tn - 1)) / tn);
  const jit::ScalarType t = g.type;

  return loop_nest(
      ctx, dims,
      [&](const std::vector<Expr>& idx) {
        Batch b(idx.begin(), idx.begin() + long(nb));
        Expr i0 = idx[nb] * tm, j0 = idx[nb + 1] * tn;
        window::Lets block_lets;
        // (A let-bound row count even when M is a multiple of tile_m: an immediate one lets LLVM
        // unroll the row groups into one loop body, which measured ~15% slower.)
        Expr rows = block_size(ctx, g.m, tm, i0, "rows", block_lets, /*full_imm=*/false);
        Expr cols = block_size(ctx, g.n, tn, j0, "cols", block_lets);
        auto y_at = [&](const Expr& i, const Expr& j) { return g.y_index(b, i, j); };

        // Y[rows, j0 + j] += sum over ks of A[row, k] * B[k, j0 + j], for j vectorized.
        auto update = [&](const std::vector<Expr>& row_ids, const std::vector<Expr>& ks) {
          window::Lets lets;
          std::vector<std::vector<Expr>> av(row_ids.size());
          for (size_t r = 0; r < row_ids.size(); ++r)
            for (const Expr& k : ks) {
              Expr v = jit::load(g.a.buffer, t, g.a.index(b, row_ids[r], k));
              if (g.alpha != 1.0) v = v * jit::fimm(g.alpha, t);
              lets.push_back({ctx.fresh_var("a"), v});
              av[r].push_back(jit::var(lets.back().first, t));
            }
          std::string jv = ctx.fresh_var("j");
          Expr j = j0 + jit::var(jv);
          window::Lets blets;
          std::vector<Expr> bv;
          for (const Expr& k : ks) {
            blets.push_back({ctx.fresh_var("bv"), jit::load(g.b.buffer, t, g.b.index(b, k, j))});
            bv.push_back(jit::var(blets.back().first, t));
          }
          std::vector<Stmt> stores;
          for (size_t r = 0; r < row_ids.size(); ++r) {
            Expr acc = jit::load(g.y_buffer, t, y_at(row_ids[r], j));
            for (size_t u = 0; u < ks.size(); ++u) acc = acc + av[r][u] * bv[u];
            stores.push_back(jit::store(g.y_buffer, y_at(row_ids[r], j), acc));
          }
          Stmt inner = window::wrap(blets, jit::block(stores));
          return window::wrap(lets, window::vector_loop(ctx, jv, cols, inner));
        };

        // All k slices for one group of rows; k ascends.
        auto k_slice = [&](const Expr& k0, const Expr& kext,
                           const std::vector<Expr>& row_ids) -> Stmt {
          std::string qv = ctx.fresh_var("kq"), rv = ctx.fresh_var("kr");
          std::vector<Expr> quad, single;
          for (int64_t u = 0; u < U; ++u) quad.push_back(k0 + jit::var(qv) * U + u);
          single.push_back(k0 + kext / U * U + jit::var(rv));
          return jit::block({window::serial_loop(qv, kext / U, update(row_ids, quad)),
                             window::serial_loop(rv, kext % U, update(row_ids, single))});
        };

        std::vector<Stmt> stmts;
        // Initialize the block.
        {
          std::string iv = ctx.fresh_var("i"), jv = ctx.fresh_var("j");
          Expr i = i0 + jit::var(iv), j = j0 + jit::var(jv);
          stmts.push_back(window::serial_loop(
              iv, rows,
              window::vector_loop(ctx, jv, cols,
                                  jit::store(g.y_buffer, y_at(i, j), init_value(g, b, i, j)))));
        }
        // k slices outermost, so the B slice stays in cache for every row group.
        {
          // One slice needs no loop (and then k0 = 0 folds into the indices).
          Expr nkb = (g.k + (tk - 1)) / tk;
          std::string kb = ctx.fresh_var("kb");
          Expr k0 = nkb->is_int_imm(1) ? jit::imm(0) : jit::var(kb) * tk;
          window::Lets slice_lets;
          Expr kext = block_size(ctx, g.k, tk, k0, "kext", slice_lets);
          std::string gv = ctx.fresh_var("ig"), rv = ctx.fresh_var("ir");
          std::vector<Expr> group;
          for (int64_t r = 0; r < R; ++r) group.push_back(i0 + jit::var(gv) * R + r);
          std::vector<Expr> one = {i0 + rows / R * R + jit::var(rv)};
          Stmt slice = jit::block({window::serial_loop(gv, rows / R, k_slice(k0, kext, group)),
                                   window::serial_loop(rv, rows % R, k_slice(k0, kext, one))});
          slice = window::wrap(slice_lets, slice);
          stmts.push_back(nkb->is_int_imm(1) ? slice : window::serial_loop(kb, nkb, slice));
        }
        return window::wrap(block_lets, jit::block(stmts));
      },
      /*vectorize=*/false, tm * tn * std::max<int64_t>(g.k_c, 1));
}

std::optional<jit::Kernel> lower_gemm_spec(LowerContext& ctx, const GemmSpec& g) {
  const bool dot = g.n->is_int_imm(1) || (!g.b.col_unit && g.b.row_unit);
  Stmt body = dot ? gemm_dot(ctx, g) : gemm_axpy(ctx, g);
  return ctx.finish(body, ctx.node().op_type);
}

// Two dims that must be equal: nullopt when both are immediates that differ.
std::optional<Expr> same_dim(const Expr& a, const Expr& b) {
  if (a->is_int_imm() && b->is_int_imm() && a->ival != b->ival) return std::nullopt;
  return window::common(a, b);
}

bool float_types(const LowerContext& ctx, int n_inputs) {
  jit::ScalarType t = ctx.input(0).type;
  if (!jit::is_float(t) || ctx.output(0).type != t) return false;
  for (int i = 0; i < n_inputs; ++i)
    if (ctx.has_input(i) && ctx.input(i).type != t) return false;
  return true;
}

int64_t concrete_or_1(const TensorArg& t, int d) {
  return d >= 0 && size_t(d) < t.concrete.size() ? t.concrete[size_t(d)] : 1;
}

std::optional<jit::Kernel> lower_matmul(LowerContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1) || ctx.num_outputs() != 1) return std::nullopt;
  if (!float_types(ctx, 2)) return std::nullopt;
  const TensorArg& a = ctx.input(0);
  const TensorArg& b = ctx.input(1);
  const TensorArg& y = ctx.output(0);
  const int ra = a.rank(), rb = b.rank();
  if (ra < 1 || rb < 1) return std::nullopt;
  const int nba = std::max(ra - 2, 0), nbb = std::max(rb - 2, 0);
  const int nbo = y.rank() - (ra > 1) - (rb > 1);
  if (nbo != std::max(nba, nbb)) return std::nullopt;

  GemmSpec g;
  g.type = a.type;
  Expr m = ra > 1 ? a.dims[size_t(ra - 2)] : jit::imm(1);
  Expr n = rb > 1 ? b.dims[size_t(rb - 1)] : jit::imm(1);
  auto k = same_dim(a.dims[size_t(ra - 1)], b.dims[size_t(rb > 1 ? rb - 2 : 0)]);
  if (!k) return std::nullopt;
  if (ra > 1) {
    auto mm = same_dim(m, y.dims[size_t(nbo)]);
    if (!mm) return std::nullopt;
    m = *mm;
  }
  if (rb > 1) {
    auto nn = same_dim(n, y.dims[size_t(y.rank() - 1)]);
    if (!nn) return std::nullopt;
    n = *nn;
  }
  g.m = m;
  g.n = n;
  g.k = *k;
  // Batch extents: the output's, bounded by every operand dim that is not broadcast.
  for (int d = 0; d < nbo; ++d) {
    Expr e = y.dims[size_t(d)];
    for (const auto& [t, nbx] : {std::pair{&a, nba}, std::pair{&b, nbb}}) {
      int xd = d - (nbo - nbx);
      if (xd < 0 || is_one(t->dims[size_t(xd)])) continue;
      auto s = same_dim(e, t->dims[size_t(xd)]);
      if (!s) return std::nullopt;
      e = *s;
    }
    g.batch.push_back(e);
  }
  auto batch_index = [nbo](const TensorArg& t, int nbx, const Batch& bi) {
    std::vector<Expr> v;
    for (int xd = 0; xd < nbx; ++xd)
      v.push_back(is_one(t.dims[size_t(xd)]) ? jit::imm(0) : bi[size_t(xd + nbo - nbx)]);
    return v;
  };
  g.a.buffer = ctx.input_buffer(0);
  g.a.index = [&a, nba, ra, batch_index](const Batch& bi, const Expr& r, const Expr& c) {
    std::vector<Expr> v = batch_index(a, nba, bi);
    if (ra > 1) v.push_back(r);
    v.push_back(c);
    return v;
  };
  g.a.col_unit = is_one(a.strides.back());
  g.a.row_unit = ra > 1 && is_one(a.strides[size_t(ra - 2)]);
  g.b.buffer = ctx.input_buffer(1);
  g.b.index = [&b, nbb, rb, batch_index](const Batch& bi, const Expr& r, const Expr& c) {
    std::vector<Expr> v = batch_index(b, nbb, bi);
    v.push_back(r);
    if (rb > 1) v.push_back(c);
    return v;
  };
  g.b.col_unit = rb > 1 && is_one(b.strides.back());
  g.b.row_unit = is_one(b.strides[size_t(rb > 1 ? rb - 2 : 0)]);
  g.y_buffer = ctx.output_buffer(0);
  g.y_index = [ra, rb](const Batch& bi, const Expr& i, const Expr& j) {
    std::vector<Expr> v = bi;
    if (ra > 1) v.push_back(i);
    if (rb > 1) v.push_back(j);
    return v;
  };
  g.m_c = ra > 1 ? concrete_or_1(a, ra - 2) : 1;
  g.n_c = rb > 1 ? concrete_or_1(b, rb - 1) : 1;
  g.k_c = concrete_or_1(a, ra - 1);
  return lower_gemm_spec(ctx, g);
}

std::optional<jit::Kernel> lower_gemm(LowerContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1) || ctx.num_outputs() != 1) return std::nullopt;
  if (!float_types(ctx, 3)) return std::nullopt;
  const TensorArg& a = ctx.input(0);
  const TensorArg& b = ctx.input(1);
  const TensorArg& y = ctx.output(0);
  if (a.rank() != 2 || b.rank() != 2 || y.rank() != 2) return std::nullopt;
  const NodeAttrs attrs = ctx.attrs();
  const bool ta = attrs.attr_int("transA", 0) != 0, tb = attrs.attr_int("transB", 0) != 0;
  GemmSpec g;
  g.type = a.type;
  g.alpha = double(attrs.attr_float("alpha", 1.0f));
  const double beta = double(attrs.attr_float("beta", 1.0f));
  auto m = same_dim(a.dims[ta ? 1 : 0], y.dims[0]);
  auto n = same_dim(b.dims[tb ? 0 : 1], y.dims[1]);
  auto k = same_dim(a.dims[ta ? 0 : 1], b.dims[tb ? 1 : 0]);
  if (!m || !n || !k) return std::nullopt;
  g.m = *m;
  g.n = *n;
  g.k = *k;
  g.a.buffer = ctx.input_buffer(0);
  g.a.index = [ta](const Batch&, const Expr& r, const Expr& c) {
    return ta ? std::vector<Expr>{c, r} : std::vector<Expr>{r, c};
  };
  g.a.col_unit = is_one(a.strides[ta ? 0 : 1]);
  g.a.row_unit = is_one(a.strides[ta ? 1 : 0]);
  g.b.buffer = ctx.input_buffer(1);
  g.b.index = [tb](const Batch&, const Expr& r, const Expr& c) {
    return tb ? std::vector<Expr>{c, r} : std::vector<Expr>{r, c};
  };
  g.b.col_unit = is_one(b.strides[tb ? 0 : 1]);
  g.b.row_unit = is_one(b.strides[tb ? 1 : 0]);
  g.y_buffer = ctx.output_buffer(0);
  g.y_index = [](const Batch&, const Expr& i, const Expr& j) { return std::vector<Expr>{i, j}; };
  if (ctx.has_input(2)) {
    const TensorArg& c = ctx.input(2);
    if (c.rank() > 2) return std::nullopt;
    // A C dim that is not broadcast bounds the loops over M or N like A's and B's dims do.
    for (int d = 0; d < c.rank(); ++d) {
      const Expr& cd = c.dims[size_t(d)];
      if (is_one(cd)) continue;
      Expr& target = 2 - c.rank() + d == 0 ? g.m : g.n;
      auto e = same_dim(cd, target);
      if (!e) return std::nullopt;
      target = *e;
    }
    const jit::ScalarType t = g.type;
    g.init = [&ctx, beta, t](const Batch&, const Expr& i, const Expr& j) {
      Expr v = ctx.load_input(2, ctx.broadcast_index(2, {i, j}));
      return beta == 1.0 ? v : v * jit::fimm(beta, t);
    };
  }
  g.m_c = concrete_or_1(a, ta ? 1 : 0);
  g.n_c = concrete_or_1(b, tb ? 0 : 1);
  g.k_c = concrete_or_1(a, ta ? 0 : 1);
  return lower_gemm_spec(ctx, g);
}

}  // namespace

void register_linalg_lowerings(Lowerings& l) {
  l.add("", "MatMul", lower_matmul);
  l.add("", "Gemm", lower_gemm);
  register_conv_lowering(l);
}

}  // namespace kiln::kernels
