// Recurrent sequence models: RNN, GRU and LSTM (one layer, forward / reverse / bidirectional).
//
// One shape function and one kernel serve the three ops; they differ in the number of gates per
// direction (1, 3, 4), the number of activation functions per direction (1, 2, 3) and the cell
// update. Inputs follow ONNX: X, W, R, B, sequence_lens, initial_h (initial_c, P for LSTM).
// layout=1 (opset 14 on) puts batch first in X, Y, Y_h and Y_c. The kernel canonicalizes to
// layout 0, computes in double for every float type, and zeroes Y past each batch row's
// sequence length; Y_h / Y_c hold the state after the row's last valid step (in reverse
// direction, after step 0).
#include <algorithm>
#include <cctype>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

enum class Cell { kRnn, kGru, kLstm };

Cell cell_of(const NodeAttrs& n) {
  if (n.op_type() == "GRU") return Cell::kGru;
  if (n.op_type() == "LSTM") return Cell::kLstm;
  return Cell::kRnn;
}
int gates_of(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 3 : 4; }
int activations_per_direction(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 2 : 3; }

int num_directions(const NodeAttrs& n) {
  std::string d = n.attr_string("direction", "forward");
  if (d == "forward" || d == "reverse") return 1;
  if (d == "bidirectional") return 2;
  n.fail("direction must be forward, reverse or bidirectional, got '" + d + "'");
}

int layout_of(const NodeAttrs& n) {
  // layout appeared in opset 14; older models cannot carry it.
  int64_t layout = n.opset() >= 14 ? n.attr_int("layout", 0) : 0;
  if (layout != 0 && layout != 1) n.fail("layout must be 0 or 1, got " + std::to_string(layout));
  return int(layout);
}

// Fails when input i is present with a known rank different from `want` dims, or a constant dim
// differs from the expected one (an unknown expected dim is not checked).
void check_input_shape(const InferContext& ctx, int i, const char* name,
                       const std::vector<ir::Dim>& want) {
  if (!ctx.has_input(i)) return;
  const ir::Shape& s = ctx.input_shape(i);
  if (!s.has_rank) return;
  std::string expected = ir::Shape(want).to_string();
  if (s.rank() != int(want.size()))
    ctx.fail(std::string(name) + " must have shape " + expected + ", got " + s.to_string());
  for (size_t k = 0; k < want.size(); ++k)
    if (s.dims[k].known_different(want[k]))
      ctx.fail(std::string(name) + " must have shape " + expected + ", got " + s.to_string());
}

void infer_recurrent(InferContext& ctx) {
  Cell cell = cell_of(ctx);
  int g = gates_of(cell);
  int nd = num_directions(ctx);
  int layout = layout_of(ctx);
  DType dt = ctx.input_dtype(0);
  for (int i : {1, 2, 3, 5, 6, 7})
    if (ctx.has_input(i) && ctx.input_dtype(i) != dt)
      ctx.fail("input " + std::to_string(i) + " must have X's element type " + dtype_name(dt));
  if (ctx.has_input(4) && ctx.input_dtype(4) != DType::kI32)
    ctx.fail("sequence_lens must be int32");

  ir::Dim seq = ir::Dim::unknown(), batch = ir::Dim::unknown(), in_size = ir::Dim::unknown();
  const ir::Shape& xs = ctx.input_shape(0);
  if (xs.has_rank) {
    if (xs.rank() != 3) ctx.fail("X must have rank 3, got " + xs.to_string());
    seq = xs.dims[layout == 0 ? 0 : 1];
    batch = xs.dims[layout == 0 ? 1 : 0];
    in_size = xs.dims[2];
  }
  ir::Dim hidden = ir::Dim::unknown();
  if (ctx.has_attr("hidden_size")) {
    int64_t h = ctx.attr_int("hidden_size", 0);
    if (h <= 0) ctx.fail("hidden_size must be positive, got " + std::to_string(h));
    hidden = ir::Dim::constant(h);
  } else if (ctx.input_shape(2).has_rank && ctx.input_shape(2).rank() == 3) {
    hidden = ctx.input_shape(2).dims[2];
  }
  ir::Dim gh = dim_mul(ir::Dim::constant(g), hidden);
  ir::Dim ndd = ir::Dim::constant(nd);
  check_input_shape(ctx, 1, "W", {ndd, gh, in_size});
  check_input_shape(ctx, 2, "R", {ndd, gh, hidden});
  check_input_shape(ctx, 3, "B", {ndd, dim_mul(ir::Dim::constant(2 * g), hidden)});
  check_input_shape(ctx, 4, "sequence_lens", {batch});
  std::vector<ir::Dim> state = layout == 0 ? std::vector<ir::Dim>{ndd, batch, hidden}
                                           : std::vector<ir::Dim>{batch, ndd, hidden};
  check_input_shape(ctx, 5, "initial_h", state);
  if (cell == Cell::kLstm) {
    check_input_shape(ctx, 6, "initial_c", state);
    check_input_shape(ctx, 7, "P", {ndd, dim_mul(ir::Dim::constant(3), hidden)});
  }
  std::vector<ir::Dim> y = layout == 0 ? std::vector<ir::Dim>{seq, ndd, batch, hidden}
                                       : std::vector<ir::Dim>{batch, seq, ndd, hidden};
  if (ctx.num_outputs() > 0) ctx.set_output(0, dt, ir::Shape(y));
  if (ctx.num_outputs() > 1) ctx.set_output(1, dt, ir::Shape(state));
  if (cell == Cell::kLstm && ctx.num_outputs() > 2) ctx.set_output(2, dt, ir::Shape(state));
}

// ---- activation functions --------------------------------------------------------------------

struct Activation {
  std::string name;  // lower case
  double alpha = 0, beta = 0;
  double operator()(double x) const {
    if (name == "sigmoid") return 1 / (1 + std::exp(-x));
    if (name == "tanh") return std::tanh(x);
    if (name == "relu") return std::max(x, 0.0);
    if (name == "affine") return alpha * x + beta;
    if (name == "leakyrelu") return x >= 0 ? x : alpha * x;
    if (name == "thresholdedrelu") return x > alpha ? x : 0;
    if (name == "scaledtanh") return alpha * std::tanh(beta * x);
    if (name == "hardsigmoid") return std::min(std::max(alpha * x + beta, 0.0), 1.0);
    if (name == "elu") return x >= 0 ? x : alpha * (std::exp(x) - 1);
    if (name == "softsign") return x / (1 + std::abs(x));
    if (name == "softplus") return std::log1p(std::exp(x));
    return x;  // unreachable: names are validated in parse_activations
  }
};

// The activations of every direction (forward first). alpha/beta values are consumed in order by
// the functions that take them (onnxruntime's reading of "consumed in the order of activation
// functions"); missing ones take the default of the matching ONNX op.
std::vector<Activation> parse_activations(const NodeAttrs& n, Cell cell, int nd) {
  int per = activations_per_direction(cell);
  std::vector<std::string> names = n.attr_strings("activations");
  if (names.empty()) {
    if (cell == Cell::kRnn)
      names = {"Tanh"};
    else if (cell == Cell::kGru)
      names = {"Sigmoid", "Tanh"};
    else
      names = {"Sigmoid", "Tanh", "Tanh"};
  }
  // A bidirectional node may list one direction's functions only: both directions use them.
  if (nd == 2 && int(names.size()) == per) {
    auto copy = names;
    names.insert(names.end(), copy.begin(), copy.end());
  }
  if (int(names.size()) != per * nd)
    n.fail("activations must list " + std::to_string(per * nd) + " functions, got " +
           std::to_string(names.size()));
  std::vector<float> alphas = n.attr_floats("activation_alpha");
  std::vector<float> betas = n.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::vector<Activation> out;
  for (const auto& raw : names) {
    Activation a;
    for (char ch : raw) a.name += char(std::tolower(static_cast<unsigned char>(ch)));
    double def_alpha = 0, def_beta = 0;
    bool uses_alpha = true, uses_beta = false;
    if (a.name == "affine") {
      def_alpha = 1;
      def_beta = 0;
      uses_beta = true;
    } else if (a.name == "leakyrelu")
      def_alpha = 0.01;
    else if (a.name == "thresholdedrelu")
      def_alpha = 1;
    else if (a.name == "scaledtanh") {
      def_alpha = 1;
      def_beta = 1;
      uses_beta = true;
    } else if (a.name == "hardsigmoid") {
      def_alpha = 0.2;
      def_beta = 0.5;
      uses_beta = true;
    } else if (a.name == "elu")
      def_alpha = 1;
    else if (a.name == "sigmoid" || a.name == "tanh" || a.name == "relu" || a.name == "softsign" ||
             a.name == "softplus")
      uses_alpha = false;
    else
      n.fail("unknown activation function '" + raw + "'");
    a.alpha = def_alpha;
    a.beta = def_beta;
    if (uses_alpha && ai < alphas.size()) a.alpha = alphas[ai++];
    if (uses_beta && bi < betas.size()) a.beta = betas[bi++];
    out.push_back(a);
  }
  return out;
}

// ---- kernel ----------------------------------------------------------------------------------

// Swaps the two leading axes of a [a, b, rest] buffer.
std::vector<double> swap01(const std::vector<double>& v, int64_t a, int64_t b, int64_t rest) {
  std::vector<double> out(v.size());
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < rest; ++k)
        out[size_t((j * a + i) * rest + k)] = v[size_t((i * b + j) * rest + k)];
  return out;
}

// out[r] += sum_c m[r * cols + c] * x[c] for r < rows.
void gemv_add(const double* m, const double* x, int64_t rows, int64_t cols, double* out) {
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    const double* row = m + r * cols;
    for (int64_t c = 0; c < cols; ++c) s += row[c] * x[c];
    out[r] += s;
  }
}

void run_recurrent(KernelContext& ctx) {
  Cell cell = cell_of(ctx);
  const int g = gates_of(cell);
  const int nd = num_directions(ctx);
  const int layout = layout_of(ctx);
  const bool reverse_only = ctx.attr_string("direction", "forward") == "reverse";
  const Tensor& xt = ctx.input(0);
  const Tensor& wt = ctx.input(1);
  const int64_t seq = xt.dims()[layout == 0 ? 0 : 1];
  const int64_t batch = xt.dims()[layout == 0 ? 1 : 0];
  const int64_t in = xt.dims()[2];
  const int64_t hid = ctx.input(2).dims()[2];
  const int64_t gh = g * hid;
  if (wt.dims()[1] != gh) ctx.fail("W's dim 1 must be " + std::to_string(gh));
  auto acts = parse_activations(ctx, cell, nd);
  const int per = activations_per_direction(cell);
  const bool has_clip = ctx.has_attr("clip");
  const double clip = ctx.attr_float("clip", 0);
  const bool lbr = cell == Cell::kGru && ctx.attr_int("linear_before_reset", 0) != 0;
  const bool input_forget = cell == Cell::kLstm && ctx.attr_int("input_forget", 0) != 0;

  std::vector<double> x = to_doubles(ctx, xt);
  if (layout == 1) x = swap01(x, batch, seq, in);  // -> [seq, batch, in]
  std::vector<double> w = to_doubles(ctx, wt), r = to_doubles(ctx, ctx.input(2));
  std::vector<double> b = ctx.has_input(3) ? to_doubles(ctx, ctx.input(3))
                                           : std::vector<double>(size_t(nd * 2 * gh), 0.0);
  std::vector<int64_t> lens(size_t(batch), seq);
  if (ctx.has_input(4)) {
    const Tensor& sl = ctx.input(4);
    for (int64_t i = 0; i < batch; ++i) {
      lens[size_t(i)] = sl.element_as_int(i);
      if (lens[size_t(i)] < 0 || lens[size_t(i)] > seq)
        ctx.fail("sequence_lens[" + std::to_string(i) + "] = " + std::to_string(lens[size_t(i)]) +
                     " is outside [0, " + std::to_string(seq) + "]",
                 ErrorCode::kInvalidArgument);
    }
  }
  auto load_state = [&](int i) {
    if (!ctx.has_input(i)) return std::vector<double>(size_t(nd * batch * hid), 0.0);
    std::vector<double> v = to_doubles(ctx, ctx.input(i));
    return layout == 1 ? swap01(v, batch, nd, hid) : v;  // -> [nd, batch, hid]
  };
  std::vector<double> h0 = load_state(5);
  std::vector<double> c0 = cell == Cell::kLstm ? load_state(6) : std::vector<double>();
  std::vector<double> p = cell == Cell::kLstm && ctx.has_input(7)
                              ? to_doubles(ctx, ctx.input(7))
                              : std::vector<double>(size_t(nd * 3 * hid), 0.0);

  std::vector<double> y(size_t(seq * nd * batch * hid), 0.0);  // [seq, nd, batch, hid]
  std::vector<double> yh(size_t(nd * batch * hid), 0.0), yc(yh.size(), 0.0);
  std::vector<double> gx(static_cast<size_t>(gh)), gr(static_cast<size_t>(gh));
  std::vector<double> tmp(static_cast<size_t>(hid));
  auto clipped = [&](double v) { return has_clip ? std::min(std::max(v, -clip), clip) : v; };

  for (int d = 0; d < nd; ++d) {
    const bool reverse = d == 1 || reverse_only;
    const double* wd = w.data() + d * gh * in;
    const double* rd = r.data() + d * gh * hid;
    const double* wb = b.data() + d * 2 * gh;
    const double* rb = wb + gh;
    const double* pd = p.data() + d * 3 * hid;
    const Activation& f = acts[size_t(d * per)];
    const Activation& ga = acts[size_t(d * per + (per > 1 ? 1 : 0))];
    const Activation& ha = acts[size_t(d * per + (per > 2 ? 2 : 0))];
    for (int64_t bi = 0; bi < batch; ++bi) {
      std::vector<double> h(h0.begin() + (d * batch + bi) * hid,
                            h0.begin() + (d * batch + bi + 1) * hid);
      std::vector<double> c = cell == Cell::kLstm
                                  ? std::vector<double>(c0.begin() + (d * batch + bi) * hid,
                                                        c0.begin() + (d * batch + bi + 1) * hid)
                                  : std::vector<double>();
      const int64_t len = lens[size_t(bi)];
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        const double* xv = x.data() + (t * batch + bi) * in;
        // gx = W x + Wb, gr = R h + Rb, per gate.
        for (int64_t k = 0; k < gh; ++k) {
          gx[size_t(k)] = wb[k];
          gr[size_t(k)] = rb[k];
        }
        gemv_add(wd, xv, gh, in, gx.data());
        if (cell == Cell::kGru) {
          // z and r use R h directly; the candidate's recurrent term depends on
          // linear_before_reset.
          gemv_add(rd, h.data(), 2 * hid, hid, gr.data());
          std::vector<double> z(static_cast<size_t>(hid)), rr(static_cast<size_t>(hid));
          for (int64_t k = 0; k < hid; ++k) {
            z[size_t(k)] = f(clipped(gx[size_t(k)] + gr[size_t(k)]));
            rr[size_t(k)] = f(clipped(gx[size_t(hid + k)] + gr[size_t(hid + k)]));
          }
          const double* rh = rd + 2 * hid * hid;
          std::vector<double> cand(size_t(hid), 0.0);
          if (lbr) {
            gemv_add(rh, h.data(), hid, hid, cand.data());
            for (int64_t k = 0; k < hid; ++k)
              cand[size_t(k)] = rr[size_t(k)] * (cand[size_t(k)] + rb[2 * hid + k]);
          } else {
            for (int64_t k = 0; k < hid; ++k) tmp[size_t(k)] = rr[size_t(k)] * h[size_t(k)];
            gemv_add(rh, tmp.data(), hid, hid, cand.data());
            for (int64_t k = 0; k < hid; ++k) cand[size_t(k)] += rb[2 * hid + k];
          }
          for (int64_t k = 0; k < hid; ++k) {
            double hh = ga(clipped(gx[size_t(2 * hid + k)] + cand[size_t(k)]));
            h[size_t(k)] = (1 - z[size_t(k)]) * hh + z[size_t(k)] * h[size_t(k)];
          }
        } else {
          gemv_add(rd, h.data(), gh, hid, gr.data());
          if (cell == Cell::kRnn) {
            for (int64_t k = 0; k < hid; ++k)
              h[size_t(k)] = f(clipped(gx[size_t(k)] + gr[size_t(k)]));
          } else {
            // Gate order i, o, f, c; peepholes P are i, o, f.
            for (int64_t k = 0; k < hid; ++k) {
              auto pre = [&](int gate) {
                return gx[size_t(gate * hid + k)] + gr[size_t(gate * hid + k)];
              };
              double cprev = c[size_t(k)];
              double ig = f(clipped(pre(0) + pd[k] * cprev));
              double fg = input_forget ? 1 - ig : f(clipped(pre(2) + pd[2 * hid + k] * cprev));
              double cg = ga(clipped(pre(3)));
              double cn = fg * cprev + ig * cg;
              double og = f(clipped(pre(1) + pd[hid + k] * cn));
              c[size_t(k)] = cn;
              h[size_t(k)] = og * ha(cn);
            }
          }
        }
        std::copy(h.begin(), h.end(), y.begin() + ((t * nd + d) * batch + bi) * hid);
      }
      std::copy(h.begin(), h.end(), yh.begin() + (d * batch + bi) * hid);
      if (cell == Cell::kLstm) std::copy(c.begin(), c.end(), yc.begin() + (d * batch + bi) * hid);
    }
  }

  DType dt = xt.dtype();
  // Layout 1 wants Y as [batch, seq, nd, hid] and the states as [batch, nd, hid].
  if (ctx.num_outputs() > 0) {
    std::vector<double> yo = y;
    Dims ydims{seq, nd, batch, hid};
    if (layout == 1) {
      ydims = {batch, seq, nd, hid};
      for (int64_t t = 0; t < seq; ++t)
        for (int d = 0; d < nd; ++d)
          for (int64_t bi = 0; bi < batch; ++bi)
            for (int64_t k = 0; k < hid; ++k)
              yo[size_t(((bi * seq + t) * nd + d) * hid + k)] =
                  y[size_t(((t * nd + d) * batch + bi) * hid + k)];
    }
    store_doubles(ctx, yo, ctx.output(0, dt, ydims));
  }
  Dims sdims = layout == 0 ? Dims{nd, batch, hid} : Dims{batch, nd, hid};
  if (ctx.num_outputs() > 1)
    store_doubles(ctx, layout == 1 ? swap01(yh, nd, batch, hid) : yh, ctx.output(1, dt, sdims));
  if (cell == Cell::kLstm && ctx.num_outputs() > 2)
    store_doubles(ctx, layout == 1 ? swap01(yc, nd, batch, hid) : yc, ctx.output(2, dt, sdims));
}

}  // namespace

void register_sequence_model_ops(Registry& r) {
  // One entry each: the opset 7/14/22 forms differ only in layout (read when opset >= 14) and the
  // element types allowed. Opset 1's output_sequence attribute is ignored (Y is always produced).
  for (const char* op : {"RNN", "GRU", "LSTM"})
    r.add({"", op, 1, PatternKind::kOpaque, infer_recurrent, run_recurrent});
}

}  // namespace kiln::kernels
