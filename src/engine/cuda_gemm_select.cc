// Plan steps as tiled CUDA GEMMs (see cuda_gemm_select.h).
#include "engine/cuda_gemm_select.h"

#include <cstdlib>

#include <limits>
#include <map>
#include <set>

#include "kernels/native_ops.h"
#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace kiln::engine {

namespace {

using Gemm = jit::CudaGemm;

const ir::Value* input_value(const ir::Graph& g, const ir::Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return nullptr;
  return &g.values[size_t(n.inputs[i])];
}

bool f32_concrete(const ir::Value* v) {
  return v && v->dtype == DType::kF32 && v->shape.is_concrete();
}

// MatMul with numpy broadcasting of the batch dims; 1-D operands as rows / columns. `sa` and `sb`:
// each operand's element strides per dim (empty: contiguous; a transpose read through has its
// input's strides permuted).
std::optional<Gemm> matmul(const Dims& da, const Dims& db, const Dims& dy,
                           std::vector<int64_t> sa = {}, std::vector<int64_t> sb = {}) {
  if (da.empty() || db.empty()) return std::nullopt;
  if (sa.empty()) sa = kernels::strides_of(da);
  if (sb.empty()) sb = kernels::strides_of(db);
  if (sa.size() != da.size() || sb.size() != db.size()) return std::nullopt;
  Gemm gm;
  const bool a_vec = da.size() == 1, b_vec = db.size() == 1;
  gm.m = a_vec ? 1 : da[da.size() - 2];
  gm.k = da.back();
  const int64_t kb = b_vec ? db[0] : db[db.size() - 2];
  gm.n = b_vec ? 1 : db.back();
  if (kb != gm.k) return std::nullopt;
  gm.a_m = a_vec ? 0 : sa[da.size() - 2];
  gm.a_k = sa.back();
  gm.b_k = b_vec ? sb[0] : sb[db.size() - 2];
  gm.b_n = b_vec ? 0 : sb.back();
  gm.y_m = gm.n;
  gm.y_n = 1;
  const Dims ba(da.begin(), da.end() - (a_vec ? 1 : 2)), bb(db.begin(), db.end() - (b_vec ? 1 : 2));
  const size_t rank = std::max(ba.size(), bb.size());
  Dims out(rank);
  for (size_t d = 0; d < rank; ++d) {
    int64_t ea = d + ba.size() >= rank ? ba[d + ba.size() - rank] : 1;
    int64_t eb = d + bb.size() >= rank ? bb[d + bb.size() - rank] : 1;
    if (ea != eb && ea != 1 && eb != 1) return std::nullopt;
    out[d] = std::max(ea, eb);
  }
  int64_t expect = num_elements(out) * gm.m * gm.n;
  if (expect != num_elements(dy)) return std::nullopt;
  // Batch steps of each operand as the output's batch dims see them (0 where broadcast).
  auto batch_step = [&](const Dims& batch, const std::vector<int64_t>& strides, size_t d) {
    if (d + batch.size() < rank) return int64_t(0);
    const size_t i = d + batch.size() - rank;
    return batch[i] == 1 ? int64_t(0) : strides[i];
  };
  const std::vector<int64_t> so = kernels::strides_of(out);
  for (size_t d = 0; d < rank; ++d)
    gm.batch.push_back(
        {out[d], batch_step(ba, sa, d), batch_step(bb, sb, d), so[d] * gm.m * gm.n, 0});
  return gm;
}

std::optional<Gemm> gemm(const ir::Graph& g, const ir::Node& n, const Dims& da, const Dims& db,
                         const Dims& dy) {
  if (da.size() != 2 || db.size() != 2 || dy.size() != 2) return std::nullopt;
  kernels::NodeAttrs at(n);
  const bool ta = at.attr_int("transA", 0) != 0, tb = at.attr_int("transB", 0) != 0;
  Gemm gm;
  gm.m = ta ? da[1] : da[0];
  gm.k = ta ? da[0] : da[1];
  gm.n = tb ? db[0] : db[1];
  if ((tb ? db[1] : db[0]) != gm.k || dy != Dims{gm.m, gm.n}) return std::nullopt;
  gm.a_m = ta ? 1 : gm.k;
  gm.a_k = ta ? gm.m : 1;
  gm.b_k = tb ? 1 : gm.n;
  gm.b_n = tb ? gm.k : 1;
  gm.y_m = gm.n;
  gm.y_n = 1;
  gm.alpha = at.attr_float("alpha", 1.0f);
  gm.beta = at.attr_float("beta", 1.0f);
  if (const ir::Value* c = input_value(g, n, 2)) {
    if (!f32_concrete(c)) return std::nullopt;
    const Dims dc = c->shape.concrete();
    if (dc.size() > 2) return std::nullopt;
    const int64_t cm = dc.size() == 2 ? dc[0] : 1, cn = dc.empty() ? 1 : dc.back();
    if ((cm != 1 && cm != gm.m) || (cn != 1 && cn != gm.n)) return std::nullopt;
    gm.has_bias = true;
    gm.bias_m = cm == 1 ? 0 : cn;
    gm.bias_n = cn == 1 ? 0 : 1;
  }
  return gm;
}

std::optional<Gemm> conv(const ir::Graph& g, const ir::Node& n) {
  std::optional<kernels::fast::ConvShape> cs = kernels::conv_shape(g, n);
  if (!cs) return std::nullopt;
  const int64_t groups = cs->group, oh = cs->out_h(), ow = cs->out_w();
  Gemm gm;
  gm.m = cs->k / groups;  // 1 for a depthwise convolution: a row per group
  const int64_t cg = cs->c / groups;
  gm.k = cg * cs->r * cs->s;
  gm.n = oh * ow;
  gm.a_m = gm.k;
  gm.a_k = 1;
  gm.y_m = gm.n;
  gm.y_n = 1;
  gm.batch = {{cs->n, 0, cs->c * cs->h * cs->w, cs->k * gm.n, 0},
              {groups, gm.m * gm.k, cg * cs->h * cs->w, gm.m * gm.n, gm.m}};
  const bool pointwise = cs->r == 1 && cs->s == 1 && cs->stride_h == 1 && cs->stride_w == 1 &&
                         cs->pad_t == 0 && cs->pad_l == 0 && cs->pad_b == 0 && cs->pad_r == 0;
  if (pointwise) {  // B is the image itself: [C, H*W]
    gm.b_k = cs->h * cs->w;
    gm.b_n = 1;
  } else {
    gm.conv = true;
    gm.h = cs->h;
    gm.w = cs->w;
    gm.kr = cs->r;
    gm.ks = cs->s;
    gm.ow = ow;
    gm.stride_h = cs->stride_h;
    gm.stride_w = cs->stride_w;
    gm.pad_t = cs->pad_t;
    gm.pad_l = cs->pad_l;
    gm.dil_h = cs->dil_h;
    gm.dil_w = cs->dil_w;
  }
  if (input_value(g, n, 2)) {
    gm.has_bias = true;
    gm.bias_m = 1;
    gm.bias_n = 0;
  }
  return gm;
}

}  // namespace

namespace {

// The GEMM of step `s` before tiling (buffers: the step's inputs, then its output); a MatMul's
// operands with the element strides `sa` / `sb` when given (see matmul).
std::optional<Gemm> gemm_shape(const ir::Graph& g, const PlanStep& s,
                               const std::vector<int64_t>& sa = {},
                               const std::vector<int64_t>& sb = {}) {
  if (s.kind != PlanStep::Kind::kKernel || s.fused.size() > 1 || s.node < 0) return std::nullopt;
  const ir::Node& n = g.nodes[size_t(s.node)];
  if (!n.domain.empty() && n.domain != "ai.onnx") return std::nullopt;
  if (s.inputs != n.inputs || s.outputs != n.outputs || n.outputs.size() != 1) return std::nullopt;
  const ir::Value* a = input_value(g, n, 0);
  const ir::Value* b = input_value(g, n, 1);
  const ir::Value& y = g.values[size_t(n.outputs[0])];
  if (!f32_concrete(a) || !f32_concrete(b) || !f32_concrete(&y)) return std::nullopt;
  if (num_elements(y.shape.concrete()) == 0) return std::nullopt;
  std::optional<Gemm> gm;
  if (n.op_type == "MatMul")
    gm = matmul(a->shape.concrete(), b->shape.concrete(), y.shape.concrete(), sa, sb);
  else if (n.op_type == "Gemm")
    gm = gemm(g, n, a->shape.concrete(), b->shape.concrete(), y.shape.concrete());
  else if (n.op_type == "Conv")
    gm = conv(g, n);
  if (!gm || gm->m <= 0 || gm->n <= 0) return std::nullopt;
  gm->num_buffers = int(s.inputs.size() + s.outputs.size());
  gm->a_buf = 0;
  gm->b_buf = 1;
  gm->bias_buf = gm->has_bias ? 2 : -1;
  gm->y_buf = int(s.inputs.size());
  // Operands: conv weights are A and the image B; MatMul and Gemm read input 0 as A.
  if (n.op_type == "Conv") std::swap(gm->a_buf, gm->b_buf);
  return gm;
}

// The f32 scalar constant at input i of n, `def` when the input is absent; nullopt otherwise.
std::optional<float> const_scalar(const ir::Graph& g, const ir::Node& n, size_t i, float def) {
  const ir::Value* v = input_value(g, n, i);
  if (!v) return def;
  if (!v->constant.defined() || v->constant.dtype() != DType::kF32 || v->constant.numel() != 1)
    return std::nullopt;
  return v->constant.data<float>()[0];
}

Dims without_leading_ones(Dims d) {
  while (!d.empty() && d.front() == 1) d.erase(d.begin());
  return d;
}

// Takes step j's elementwise chain over the GEMM's output into `l`'s epilogue; false (and `l`
// untouched) when the chain does not fit. `producer[v]`: the step writing v (-1: none).
bool fuse_chain(const ir::Graph& g, const Plan& plan, const std::vector<int>& producer, size_t i,
                size_t j, CudaGemmLaunch* l) {
  const PlanStep& s = plan.steps[j];
  if (s.kind != PlanStep::Kind::kKernel || !s.elementwise || s.outputs.size() != 1) return false;
  const bool conv = g.nodes[size_t(plan.steps[i].node)].op_type == "Conv";
  CudaGemmLaunch f = *l;
  Gemm& gm = f.gemm;
  int cur = plan.steps[i].outputs[0];
  const Dims out_dims = g.values[size_t(cur)].shape.concrete();
  const std::vector<int> nodes = s.nodes();
  for (int ni : nodes) {
    const ir::Node& n = g.nodes[size_t(ni)];
    if ((!n.domain.empty() && n.domain != "ai.onnx") || n.outputs.size() != 1 || n.inputs.empty())
      return false;
    if (gm.act != Gemm::Act::kNone) return false;  // an activation ends the chain
    kernels::NodeAttrs at(n);
    if (n.op_type == "Relu" && n.inputs[0] == cur) {
      gm.act = Gemm::Act::kRelu;
    } else if (n.op_type == "Clip" && n.inputs[0] == cur) {
      // Missing bounds are the float range, as the Clip kernels have them (inf stays inf).
      const float lowest = std::numeric_limits<float>::lowest();
      const float most = std::numeric_limits<float>::max();
      std::optional<float> lo = n.opset < 11 ? std::optional<float>(at.attr_float("min", lowest))
                                             : const_scalar(g, n, 1, lowest);
      std::optional<float> hi = n.opset < 11 ? std::optional<float>(at.attr_float("max", most))
                                             : const_scalar(g, n, 2, most);
      if (!lo || !hi) return false;
      gm.act = Gemm::Act::kClip;
      gm.lo = *lo;
      gm.hi = *hi;
    } else if (n.op_type == "Gelu" && n.inputs[0] == cur && n.inputs.size() == 1) {
      const std::string approx = at.attr_string("approximate", "none");
      if (approx != "none" && approx != "tanh") return false;
      gm.act = approx == "tanh" ? Gemm::Act::kGeluTanh : Gemm::Act::kGelu;
    } else if (n.op_type == "Add" && n.inputs.size() == 2 &&
               (n.inputs[0] == cur) != (n.inputs[1] == cur)) {
      const int o = n.inputs[0] == cur ? n.inputs[1] : n.inputs[0];
      if (o < 0) return false;
      const ir::Value& ov = g.values[size_t(o)];
      if (!f32_concrete(&ov)) return false;
      const Dims od = without_leading_ones(ov.shape.concrete());
      const int64_t channels = conv ? out_dims[1] : 0;
      if (ov.constant.defined() && !gm.has_bias && !gm.has_residual &&
          (conv ? od == Dims{channels, 1, 1} : od == Dims{gm.n} && out_dims.back() == gm.n)) {
        gm.has_bias = true;
        gm.beta = 1.0f;  // Gemm's beta scales its own C only
        gm.bias_buf = int(f.buffers.size());
        f.buffers.push_back(o);
        gm.bias_m = conv ? 1 : 0;
        gm.bias_n = conv ? 0 : 1;
        for (Gemm::Batch& b : gm.batch) b.bias = 0;
        if (conv) gm.batch[1].bias = gm.m;  // the group's first channel
      } else if (ov.shape.concrete() == out_dims && !gm.has_residual &&
                 producer[size_t(o)] < int(i)) {
        gm.has_residual = true;
        gm.residual_buf = int(f.buffers.size());
        f.buffers.push_back(o);
      } else {
        return false;
      }
    } else {
      return false;
    }
    f.label += "+" + n.op_type;
    cur = n.outputs[0];
  }
  if (cur != s.outputs[0]) return false;
  f.absorbed.push_back(int(j));
  f.output = cur;
  *l = std::move(f);
  return true;
}

// The permutation of step `s` when it is a Transpose alone on an f32 tensor of concrete shape.
std::optional<std::vector<int64_t>> transpose_perm(const ir::Graph& g, const PlanStep& s) {
  if (s.kind != PlanStep::Kind::kKernel || s.fused.size() > 1 || s.node < 0) return std::nullopt;
  const ir::Node& n = g.nodes[size_t(s.node)];
  if (n.op_type != "Transpose" || (!n.domain.empty() && n.domain != "ai.onnx")) return std::nullopt;
  if (s.inputs != n.inputs || s.outputs != n.outputs || n.inputs.size() != 1 ||
      n.outputs.size() != 1)
    return std::nullopt;
  const ir::Value* x = input_value(g, n, 0);
  if (!f32_concrete(x)) return std::nullopt;
  const size_t rank = x->shape.concrete().size();
  std::vector<int64_t> perm = kernels::NodeAttrs(n).attr_ints("perm");
  if (perm.empty())
    for (size_t d = rank; d-- > 0;) perm.push_back(int64_t(d));
  if (perm.size() != rank) return std::nullopt;
  std::vector<char> seen(rank, 0);
  for (int64_t p : perm) {
    if (p < 0 || p >= int64_t(rank) || seen[size_t(p)]) return std::nullopt;
    seen[size_t(p)] = 1;
  }
  return perm;
}

// Where a Conv GEMM writes its part of a Concat's output.
struct ConcatPart {
  int concat_step = -1, output = -1;
  int relu_step = -1;  // a step of its own computing the part's Relu, absorbed too
  int64_t channel_offset = 0, channels_total = 0;
  bool relu = false, first = false;
};

// The Concat steps (a Concat over dim 1 of 4-D f32 tensors, alone or with Relus of its inputs
// fused in) whose every input is a Conv step's output, alone or through a Relu (fused in, or a
// step of its own), read by nothing else: by Conv step, its part.
std::map<int, ConcatPart> concat_parts(const ir::Graph& g, const Plan& plan,
                                       const std::vector<int>& producer,
                                       const std::vector<std::vector<int>>& readers,
                                       const std::vector<char>& graph_output) {
  std::map<int, ConcatPart> parts;
  for (size_t j = 0; j < plan.steps.size(); ++j) {
    const PlanStep& s = plan.steps[j];
    if (s.kind != PlanStep::Kind::kKernel || s.outputs.size() != 1) continue;
    const std::vector<int> nodes = s.nodes();
    const ir::Node* concat = nullptr;
    std::map<int, int> relu_of;  // Relu output -> its input
    bool fits = true;
    for (int ni : nodes) {
      const ir::Node& n = g.nodes[size_t(ni)];
      if (!n.domain.empty() && n.domain != "ai.onnx") fits = false;
      if (n.op_type == "Concat" && !concat && n.outputs.size() == 1 && n.outputs[0] == s.outputs[0])
        concat = &n;
      else if (n.op_type == "Relu" && n.inputs.size() == 1 && n.outputs.size() == 1)
        relu_of[n.outputs[0]] = n.inputs[0];
      else
        fits = false;
    }
    if (!fits || !concat) continue;
    const ir::Value& out = g.values[size_t(s.outputs[0])];
    if (!f32_concrete(&out) || out.shape.concrete().size() != 4) continue;
    int64_t axis = kernels::NodeAttrs(*concat).attr_int("axis", 1);
    if (axis < 0) axis += 4;
    if (axis != 1) continue;
    const Dims od = out.shape.concrete();
    std::vector<std::pair<int, ConcatPart>> found;
    int64_t offset = 0;
    std::set<int> steps, relus_used;
    for (int in : concat->inputs) {
      ConcatPart part;
      int src = in;
      if (auto r = relu_of.find(in); r != relu_of.end()) {
        src = r->second;
        part.relu = true;
        relus_used.insert(in);
      } else if (const int rs = in >= 0 ? producer[size_t(in)] : -1; rs >= 0) {
        // A Relu step of its own between the Conv and the Concat.
        const PlanStep& r = plan.steps[size_t(rs)];
        const std::vector<int> rn = r.nodes();
        if (r.kind == PlanStep::Kind::kKernel && rn.size() == 1 && rn[0] >= 0 &&
            g.nodes[size_t(rn[0])].op_type == "Relu" && r.inputs.size() == 1 &&
            r.outputs.size() == 1 && !graph_output[size_t(in)] && readers[size_t(in)].size() == 1) {
          src = r.inputs[0];
          part.relu = true;
          part.relu_step = rs;
        }
      }
      const int p = src >= 0 ? producer[size_t(src)] : -1;
      if (p < 0 || p >= int(j) || graph_output[size_t(src)] || readers[size_t(src)].size() != 1 ||
          !steps.insert(p).second)
        break;
      const PlanStep& ps = plan.steps[size_t(p)];
      if (ps.node < 0 || g.nodes[size_t(ps.node)].op_type != "Conv" || !gemm_shape(g, ps) ||
          ps.outputs.size() != 1 || ps.outputs[0] != src)
        break;
      const Dims sd = g.values[size_t(src)].shape.concrete();
      if (sd.size() != 4 || sd[0] != od[0] || sd[2] != od[2] || sd[3] != od[3]) break;
      part.concat_step = int(j);
      part.output = s.outputs[0];
      part.channel_offset = offset;
      part.channels_total = od[1];
      offset += sd[1];
      found.push_back({p, part});
    }
    // Every input placed, the channels adding up, and every fused Relu one of the inputs'.
    if (found.empty() || found.size() != concat->inputs.size() || offset != od[1] ||
        relus_used.size() != relu_of.size())
      continue;
    int first = found.front().first;  // the part that runs first defines the output
    for (const auto& [p, part] : found) first = std::min(first, p);
    for (auto& [p, part] : found) {
      part.first = p == first;
      parts[p] = part;
    }
  }
  return parts;
}

}  // namespace

bool cuda_arch_has_tf32(const std::string& arch) {
  if (arch.rfind("sm_", 0) != 0) return false;
  return std::atoi(arch.c_str() + 3) >= 80;
}

std::optional<jit::CudaGemm> cuda_gemm_for_step(const ir::Graph& g, const PlanStep& s,
                                                int multiprocessors, bool tf32) {
  std::optional<Gemm> gm = gemm_shape(g, s);
  if (gm) jit::choose_cuda_gemm_tiling(&*gm, multiprocessors, tf32);
  return gm;
}

std::vector<std::optional<CudaGemmLaunch>> plan_cuda_gemms(const Plan& plan, int multiprocessors,
                                                           bool fuse_epilogues, bool tf32) {
  const ir::Graph& g = *plan.graph;
  std::vector<std::optional<CudaGemmLaunch>> out(plan.steps.size());
  std::vector<int> producer(g.values.size(), -1);
  std::vector<std::vector<int>> readers(g.values.size());
  for (size_t si = 0; si < plan.steps.size(); ++si) {
    for (int v : plan.steps[si].outputs)
      if (v >= 0) producer[size_t(v)] = int(si);
    for (int v : plan.steps[si].inputs)
      if (v >= 0 && (readers[size_t(v)].empty() || readers[size_t(v)].back() != int(si)))
        readers[size_t(v)].push_back(int(si));
  }
  std::vector<char> graph_output(g.values.size(), 0), absorbed(plan.steps.size(), 0);
  for (int v : g.outputs) graph_output[size_t(v)] = 1;
  const std::map<int, ConcatPart> parts =
      fuse_epilogues ? concat_parts(g, plan, producer, readers, graph_output)
                     : std::map<int, ConcatPart>{};
  // Takes step t into l when it is a Transpose that only the GEMM reads (its output not a graph
  // output) of value v; its permutation.
  auto lone_transpose = [&](int t, int v) -> std::optional<std::vector<int64_t>> {
    if (t < 0 || absorbed[size_t(t)] || graph_output[size_t(v)] || readers[size_t(v)].size() != 1)
      return std::nullopt;
    return transpose_perm(g, plan.steps[size_t(t)]);
  };
  for (size_t si = 0; si < plan.steps.size(); ++si) {
    if (absorbed[si]) continue;
    const PlanStep& s = plan.steps[si];
    std::optional<Gemm> gm = gemm_shape(g, s);
    if (!gm) continue;
    CudaGemmLaunch l;
    l.gemm = *gm;
    l.buffers = s.inputs;
    l.label = g.nodes[size_t(s.node)].op_type;
    const bool matmul_node = l.label == "MatMul";
    const int y = s.outputs[0];
    l.output = y;
    if (auto part = parts.find(int(si)); part != parts.end()) {
      // A Conv writing its channels of a Concat's output: images step over all its channels.
      const ConcatPart& cp = part->second;
      if (cp.relu) l.gemm.act = Gemm::Act::kRelu;
      l.gemm.y_offset = cp.channel_offset * l.gemm.n;
      l.gemm.batch[0].y = cp.channels_total * l.gemm.n;
      l.output = cp.output;
      l.concat_step = cp.concat_step;
      l.output_defined_before = !cp.first;
      for (int a : {cp.relu_step, cp.concat_step})
        if (a >= 0) {
          l.absorbed.push_back(a);
          absorbed[size_t(a)] = 1;
        }
      l.label += cp.relu ? "+Relu+Concat" : "+Concat";
    }
    // A MatMul operand that a Transpose made: the GEMM reads the transpose's input instead, with
    // its strides permuted, and the transpose has no launch.
    if (fuse_epilogues && matmul_node) {
      std::vector<int64_t> strides[2];
      int through[2] = {-1, -1};
      for (int o = 0; o < 2; ++o) {
        const int v = s.inputs[size_t(o)], t = producer[size_t(v)];
        std::optional<std::vector<int64_t>> perm = lone_transpose(t, v);
        if (!perm) continue;
        const std::vector<int64_t> sx =
            kernels::strides_of(g.values[size_t(plan.steps[size_t(t)].inputs[0])].shape.concrete());
        for (int64_t p : *perm) strides[o].push_back(sx[size_t(p)]);
        through[o] = t;
      }
      if (through[0] >= 0 || through[1] >= 0)
        if (std::optional<Gemm> t = gemm_shape(g, s, strides[0], strides[1])) {
          l.gemm = *t;
          for (int o = 0; o < 2; ++o) {
            if (through[o] < 0) continue;
            l.buffers[size_t(o)] = plan.steps[size_t(through[o])].inputs[0];
            if (!absorbed[size_t(through[o])]) {
              absorbed[size_t(through[o])] = 1;
              l.absorbed.push_back(through[o]);
              l.label = "Transpose+" + l.label;
            }
          }
        }
    }
    if (fuse_epilogues && l.concat_step < 0 && !graph_output[size_t(y)] &&
        readers[size_t(y)].size() == 1 && readers[size_t(y)][0] > int(si))
      if (fuse_chain(g, plan, producer, si, size_t(readers[size_t(y)][0]), &l))
        absorbed[size_t(l.absorbed.back())] = 1;
    // A Transpose of the result (no residual, which is read at the result's offsets): the GEMM
    // writes the transposed tensor directly, each result dim stepping as its place there does.
    const Dims ydims = g.values[size_t(y)].shape.concrete();
    if (fuse_epilogues && matmul_node && l.concat_step < 0 && !l.gemm.has_residual &&
        ydims.size() == l.gemm.batch.size() + 2 && !graph_output[size_t(l.output)] &&
        readers[size_t(l.output)].size() == 1) {
      const int t = readers[size_t(l.output)][0];
      std::optional<std::vector<int64_t>> perm = lone_transpose(t, l.output);
      if (perm && t > int(si) && plan.steps[size_t(t)].inputs[0] == l.output) {
        const int z = plan.steps[size_t(t)].outputs[0];
        const std::vector<int64_t> sz = kernels::strides_of(g.values[size_t(z)].shape.concrete());
        std::vector<int64_t> sy(perm->size());
        for (size_t j = 0; j < perm->size(); ++j) sy[size_t((*perm)[j])] = sz[j];
        const size_t nb = l.gemm.batch.size();
        for (size_t d = 0; d < nb; ++d) l.gemm.batch[d].y = sy[d];
        l.gemm.y_m = sy[nb];
        l.gemm.y_n = sy[nb + 1];
        absorbed[size_t(t)] = 1;
        l.absorbed.push_back(t);
        l.output = z;
        l.label += "+Transpose";
      }
    }
    l.gemm.y_buf = int(l.buffers.size());
    l.buffers.push_back(l.output);
    l.gemm.num_buffers = int(l.buffers.size());
    jit::choose_cuda_gemm_tiling(&l.gemm, multiprocessors, tf32);
    out[si] = std::move(l);
  }
  return out;
}

}  // namespace kiln::engine
