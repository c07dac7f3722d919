// Classical-ML ops of the "ai.onnx.ml" domain (LabelEncoder, Binarizer, ArrayFeatureExtractor,
// TreeEnsemble) and the optimizers of "ai.onnx.preview.training" (Adagrad, Adam, Momentum).
//
// The optimizers update each group of same-shaped tensors independently, computing in double and
// rounding once to the tensors' type, with the formulas of the ONNX operator docs. LabelEncoder
// compares keys by value class (string, integer or floating point; NaN keys match NaN inputs),
// so a float32 input may look up float keys of any width. TreeEnsemble (opset 5) walks every
// tree for every row; leaves add (target, weight) pairs that are aggregated per target.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using ir::Dim;
using ir::Shape;

constexpr const char* kMl = "ai.onnx.ml";
constexpr const char* kTraining = "ai.onnx.preview.training";

// ---- Optimizers -------------------------------------------------------------------------------

// Which optimizer; the layout of the variadic inputs follows from it.
enum class Optimizer { kAdagrad, kAdam, kMomentum };

// Tensors per optimized variable among the inputs (X, G, then the state) and among the outputs.
int inputs_per_var(Optimizer o) { return o == Optimizer::kAdam ? 4 : 3; }
int outputs_per_var(Optimizer o) { return o == Optimizer::kAdam ? 3 : 2; }

// Number of optimized variables; fail()s when the input/output counts do not fit the layout.
int num_vars(const NodeAttrs& ctx, Optimizer o, int num_inputs, int num_outputs) {
  const int k = inputs_per_var(o);
  if (num_inputs < 2 + k || (num_inputs - 2) % k != 0)
    ctx.fail("expects R, T and " + std::to_string(k) + " tensors per optimized variable, got " +
             std::to_string(num_inputs) + " inputs");
  const int n = (num_inputs - 2) / k;
  if (num_outputs > n * outputs_per_var(o))
    ctx.fail("has " + std::to_string(num_outputs) + " outputs, at most " +
             std::to_string(n * outputs_per_var(o)) + " expected for " + std::to_string(n) +
             " variables");
  return n;
}

template <Optimizer O>
void infer_optimizer(InferContext& ctx) {
  const int n = num_vars(ctx, O, ctx.num_inputs(), ctx.num_outputs());
  DType rt = ctx.input_dtype(0);
  if (rt != DType::kF32 && rt != DType::kF64) ctx.fail("R must be float or double");
  if (ctx.input_dtype(1) != DType::kI64) ctx.fail("T must be int64");
  for (int v = 0; v < n; ++v) {
    DType t = ctx.input_dtype(2 + v);
    if (t != DType::kF32 && t != DType::kF64)
      ctx.fail("optimized tensors must be float or double, got " + std::string(dtype_name(t)));
    const Shape& xs = ctx.input_shape(2 + v);
    for (int k = 1; k < inputs_per_var(O); ++k) {
      int i = 2 + k * n + v;
      if (ctx.input_dtype(i) != t) ctx.fail("input " + std::to_string(i) + " must have X's type");
      const Shape& s = ctx.input_shape(i);
      if (xs.has_rank && s.has_rank) {
        bool differ = xs.rank() != s.rank();
        for (int d = 0; !differ && d < xs.rank(); ++d)
          differ = xs.dims[size_t(d)].known_different(s.dims[size_t(d)]);
        if (differ)
          ctx.fail("input " + std::to_string(i) + " has shape " + s.to_string() +
                   ", expected X's shape " + xs.to_string());
      }
    }
    for (int k = 0; k < outputs_per_var(O); ++k) {
      int o = k * n + v;
      if (o < ctx.num_outputs()) ctx.set_output(o, t, xs);
    }
  }
}

double scalar_of(const KernelContext& ctx, int i, const char* name) {
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1)
    ctx.fail(std::string(name) + " must hold one value", ErrorCode::kInvalidArgument);
  return t.element_as_double(0);
}

template <Optimizer O>
void run_optimizer(KernelContext& ctx) {
  const int n = num_vars(ctx, O, ctx.num_inputs(), ctx.num_outputs());
  const double r = scalar_of(ctx, 0, "R");
  const double t = scalar_of(ctx, 1, "T");
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  for (int v = 0; v < n; ++v) {
    const Tensor& x = ctx.input(2 + v);
    std::vector<const Tensor*> in;  // X, G, state...
    for (int k = 0; k < inputs_per_var(O); ++k) {
      const Tensor& ti = ctx.input(2 + k * n + v);
      if (ti.dims() != x.dims() || ti.dtype() != x.dtype())
        ctx.fail("input " + std::to_string(2 + k * n + v) + " must match X's shape " +
                 dims_to_string(x.dims()) + " and type");
      in.push_back(&ti);
    }
    std::vector<Tensor> out;
    for (int k = 0; k < outputs_per_var(O); ++k) {
      int o = k * n + v;
      // Outputs past the node's list are computed and dropped.
      out.push_back(o < ctx.num_outputs() ? ctx.output(o, x.dtype(), x.dims())
                                          : Tensor(x.dtype(), x.dims()));
    }
    dispatch_float(x.dtype(), ctx, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        const T* px = in[0]->data<T>();
        const T* pg = in[1]->data<T>();
        T* x_new = out[0].data<T>();
        if constexpr (O == Optimizer::kAdagrad) {
          const double decay = ctx.attr_float("decay_factor", 0.0f);
          const double eps = ctx.attr_float("epsilon", 0.0f);
          const double rate = r / (1 + t * decay);
          const T* ph = in[2]->data<T>();
          T* h_new = out[1].data<T>();
          for (int64_t i = 0; i < x.numel(); ++i) {
            double g = norm * px[i] + pg[i];
            double h = ph[i] + g * g;
            h_new[i] = T(h);
            x_new[i] = T(px[i] - rate * g / (std::sqrt(h) + eps));
          }
        } else if constexpr (O == Optimizer::kAdam) {
          const double alpha = ctx.attr_float("alpha", 0.9f);
          const double beta = ctx.attr_float("beta", 0.999f);
          const double eps = ctx.attr_float("epsilon", 0.0f);
          const double post = ctx.attr_float("norm_coefficient_post", 0.0f);
          const double rate =
              t > 0 ? r * std::sqrt(1 - std::pow(beta, t)) / (1 - std::pow(alpha, t)) : r;
          const T* pv = in[2]->data<T>();
          const T* ph = in[3]->data<T>();
          T* v_new = out[1].data<T>();
          T* h_new = out[2].data<T>();
          for (int64_t i = 0; i < x.numel(); ++i) {
            double g = norm * px[i] + pg[i];
            double vv = alpha * pv[i] + (1 - alpha) * g;
            double hh = beta * ph[i] + (1 - beta) * g * g;
            v_new[i] = T(vv);
            h_new[i] = T(hh);
            double xn = px[i] - rate * vv / (std::sqrt(hh) + eps);
            x_new[i] = T((1 - post) * xn);
          }
        } else {
          const double alpha = ctx.attr_float("alpha", 0.0f);
          const double beta = ctx.attr_float("beta", 0.0f);
          const std::string mode = ctx.attr_string("mode", "standard");
          if (mode != "standard" && mode != "nesterov")
            ctx.fail("mode must be 'standard' or 'nesterov', got '" + mode + "'");
          // The gradient's coefficient is 1 on the first update (T == 0).
          const double beta_adj = t > 0 ? beta : 1.0;
          const T* pv = in[2]->data<T>();
          T* v_new = out[1].data<T>();
          for (int64_t i = 0; i < x.numel(); ++i) {
            double g = norm * px[i] + pg[i];
            double vv = alpha * pv[i] + beta_adj * g;
            v_new[i] = T(vv);
            x_new[i] = mode == "nesterov" ? T(px[i] - r * (g + alpha * vv)) : T(px[i] - r * vv);
          }
        }
      } else {
        ctx.unsupported("optimized tensors must be float or double");
      }
    });
  }
}

// ---- LabelEncoder -----------------------------------------------------------------------------

enum class KeyClass { kString, kInt, kFloat };

KeyClass key_class(DType t) {
  if (t == DType::kString) return KeyClass::kString;
  if (dtype_is_float(t)) return KeyClass::kFloat;
  return KeyClass::kInt;
}

// The mapping as tensors: keys and values (1-D, same length) and a one-element default.
struct LabelMap {
  Tensor keys, values, def;
};

Tensor strings_tensor(const std::vector<std::string>& v) {
  return Tensor::from_vector<std::string>({int64_t(v.size())}, v);
}
Tensor ints_tensor(const std::vector<int64_t>& v) {
  return Tensor::from_vector<int64_t>({int64_t(v.size())}, v);
}
Tensor floats_tensor(const std::vector<float>& v) {
  return Tensor::from_vector<float>({int64_t(v.size())}, v);
}

// Reads keys_* / values_* (one of strings, int64s, floats, tensor).
Tensor list_attr(const NodeAttrs& ctx, const std::string& prefix) {
  int count = 0;
  Tensor t;
  if (ctx.has_attr(prefix + "_strings")) {
    t = strings_tensor(ctx.attr_strings(prefix + "_strings"));
    ++count;
  }
  if (ctx.has_attr(prefix + "_int64s")) {
    t = ints_tensor(ctx.attr_ints(prefix + "_int64s"));
    ++count;
  }
  if (ctx.has_attr(prefix + "_floats")) {
    t = floats_tensor(ctx.attr_floats(prefix + "_floats"));
    ++count;
  }
  if (const Tensor* v = ctx.attr_tensor(prefix + "_tensor")) {
    t = *v;
    ++count;
  }
  if (count != 1)
    ctx.fail("exactly one of " + prefix + "_strings, " + prefix + "_int64s, " + prefix +
             "_floats, " + prefix + "_tensor must be set");
  return t;
}

LabelMap label_map(const NodeAttrs& ctx) {
  LabelMap m;
  m.keys = list_attr(ctx, "keys");
  m.values = list_attr(ctx, "values");
  if (m.keys.numel() != m.values.numel())
    ctx.fail("keys and values must have the same length, got " + std::to_string(m.keys.numel()) +
             " and " + std::to_string(m.values.numel()));
  DType vt = m.values.dtype();
  if (const Tensor* d = ctx.attr_tensor("default_tensor")) {
    if (d->numel() != 1 || d->dtype() != vt)
      ctx.fail("default_tensor must hold one value of the values' type");
    m.def = *d;
  } else if (vt == DType::kString) {
    m.def = Tensor::scalar<std::string>(ctx.attr_string("default_string", "_Unused"));
  } else if (dtype_is_float(vt)) {
    m.def = Tensor(vt, {});
    dispatch_float(vt, ctx, [&](auto tag) {
      using T = typename decltype(tag)::type;
      m.def.data<T>()[0] = from_compute<T>(ctx.attr_float("default_float", -0.0f));
    });
  } else {
    m.def = Tensor(vt, {});
    dispatch_int(vt, ctx, [&](auto tag) {
      using T = typename decltype(tag)::type;
      m.def.data<T>()[0] = T(ctx.attr_int("default_int64", -1));
    });
  }
  return m;
}

// LabelEncoder-1: classes_strings maps string <-> int64 index in both directions.
bool is_label_encoder_v1(const NodeAttrs& ctx) { return ctx.has_attr("classes_strings"); }

void infer_label_encoder(InferContext& ctx) {
  DType in = ctx.input_dtype(0);
  if (is_label_encoder_v1(ctx)) {
    if (in != DType::kString && in != DType::kI64) ctx.fail("X must be string or int64");
    ctx.set_output(0, in == DType::kString ? DType::kI64 : DType::kString, ctx.input_shape(0));
    return;
  }
  LabelMap m = label_map(ctx);
  if (key_class(in) != key_class(m.keys.dtype()))
    ctx.fail(std::string("X has type ") + dtype_name(in) + " but the keys are " +
             dtype_name(m.keys.dtype()));
  ctx.set_output(0, m.values.dtype(), ctx.input_shape(0));
}

void run_label_encoder_v1(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::vector<std::string> classes = ctx.attr_strings("classes_strings");
  if (x.dtype() == DType::kString) {
    std::map<std::string, int64_t> index;
    for (size_t i = 0; i < classes.size(); ++i) index.emplace(classes[i], int64_t(i));
    const int64_t def = ctx.attr_int("default_int64", -1);
    Tensor& y = ctx.output(0, DType::kI64, x.dims());
    const std::string* in = x.data<std::string>();
    int64_t* out = y.data<int64_t>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto it = index.find(in[i]);
      out[i] = it == index.end() ? def : it->second;
    }
  } else {
    const std::string def = ctx.attr_string("default_string", "_Unused");
    Tensor& y = ctx.output(0, DType::kString, x.dims());
    const int64_t* in = x.data<int64_t>();
    std::string* out = y.data<std::string>();
    for (int64_t i = 0; i < x.numel(); ++i)
      out[i] = in[i] >= 0 && in[i] < int64_t(classes.size()) ? classes[size_t(in[i])] : def;
  }
}

void run_label_encoder(KernelContext& ctx) {
  if (is_label_encoder_v1(ctx)) return run_label_encoder_v1(ctx);
  const Tensor& x = ctx.input(0);
  LabelMap m = label_map(ctx);
  const KeyClass kc = key_class(m.keys.dtype());
  if (key_class(x.dtype()) != kc)
    ctx.fail(std::string("X has type ") + dtype_name(x.dtype()) + " but the keys are " +
             dtype_name(m.keys.dtype()));
  // Index of each key; the first occurrence of a duplicate key wins.
  std::map<std::string, int64_t> by_string;
  std::map<int64_t, int64_t> by_int;
  std::map<double, int64_t> by_float;
  int64_t nan_index = -1;
  for (int64_t i = 0; i < m.keys.numel(); ++i) {
    if (kc == KeyClass::kString) {
      by_string.emplace(m.keys.data<std::string>()[i], i);
    } else if (kc == KeyClass::kInt) {
      by_int.emplace(m.keys.element_as_int(i), i);
    } else {
      double k = m.keys.element_as_double(i);
      if (std::isnan(k)) {
        if (nan_index < 0) nan_index = i;
      } else {
        by_float.emplace(k, i);
      }
    }
  }
  Tensor& y = ctx.output(0, m.values.dtype(), x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t found = -1;
    if (kc == KeyClass::kString) {
      auto it = by_string.find(x.data<std::string>()[i]);
      if (it != by_string.end()) found = it->second;
    } else if (kc == KeyClass::kInt) {
      auto it = by_int.find(x.element_as_int(i));
      if (it != by_int.end()) found = it->second;
    } else {
      double k = x.element_as_double(i);
      if (std::isnan(k)) {
        found = nan_index;
      } else {
        auto it = by_float.find(k);
        if (it != by_float.end()) found = it->second;
      }
    }
    if (found >= 0) {
      copy_elements(m.values, found, y, i, 1);
    } else {
      copy_elements(m.def, 0, y, i, 1);
    }
  }
}

// ---- Binarizer --------------------------------------------------------------------------------

void infer_binarizer(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (t == DType::kString || t == DType::kBool)
    ctx.fail(std::string("X must be numeric, got ") + dtype_name(t));
  infer_same_as_input0(ctx);
}

void run_binarizer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const double threshold = ctx.attr_float("threshold", 0.0f);
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    // NaN compares false and maps to 0, as the ONNX reference does.
    for (int64_t i = 0; i < x.numel(); ++i)
      out[i] = from_compute<T>(double(to_compute(in[i])) > threshold ? 1 : 0);
  });
}

// ---- ArrayFeatureExtractor --------------------------------------------------------------------

// Output: X's dims with the last replaced by the number of indices; a 1-D X gives [1, k].
void infer_array_feature_extractor(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != DType::kI64) ctx.fail("Y (the indices) must be int64");
  const Shape& xs = ctx.input_shape(0);
  const Shape& ys = ctx.input_shape(1);
  if (!xs.has_rank) {
    ctx.set_output(0, t, Shape::unranked());
    return;
  }
  if (xs.rank() == 0) ctx.fail("X must have rank >= 1");
  Dim k = Dim::constant(1);
  if (ys.has_rank) {
    for (const Dim& d : ys.dims) k = dim_mul(k, d);
  } else {
    k = ctx.fresh_dim();
  }
  std::vector<Dim> d;
  if (xs.rank() == 1) {
    d = {Dim::constant(1), k};
  } else {
    d.assign(xs.dims.begin(), xs.dims.end() - 1);
    d.push_back(k);
  }
  ctx.set_output(0, t, Shape(d));
}

void run_array_feature_extractor(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& idx = ctx.input(1);
  if (x.rank() == 0) ctx.fail("X must have rank >= 1");
  const int64_t last = x.dims().back();
  const int64_t k = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  for (int64_t j = 0; j < k; ++j)
    if (ip[j] < 0 || ip[j] >= last)
      ctx.fail("index " + std::to_string(ip[j]) + " is out of range [0, " +
                   std::to_string(last - 1) + "] of X's last dim",
               ErrorCode::kInvalidArgument);
  Dims d;
  if (x.rank() == 1) {
    d = {1, k};
  } else {
    d.assign(x.dims().begin(), x.dims().end() - 1);
    d.push_back(k);
  }
  Tensor& y = ctx.output(0, x.dtype(), d);
  const int64_t rows = last == 0 ? 0 : x.numel() / last;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) copy_elements(x, r * last + ip[j], y, r * k + j, 1);
}

// ---- TreeEnsemble (ai.onnx.ml opset 5) --------------------------------------------------------

enum NodeMode { kLeq = 0, kLt, kGte, kGt, kEq, kNeq, kMember };
enum Aggregate { kAverage = 0, kSum, kMin, kMax };
enum PostTransform { kNone = 0, kSoftmax, kLogistic, kSoftmaxZero, kProbit };

struct TreeNode {
  int mode;
  int64_t feature;
  double split;
  bool missing_tracks_true;
  int64_t true_id, false_id;  // a node index, or a leaf index when the matching flag is set
  bool true_leaf, false_leaf;
  std::vector<double> members;  // kMember only
};

struct Ensemble {
  std::vector<TreeNode> nodes;
  std::vector<int64_t> roots;
  std::vector<int64_t> leaf_targets;
  std::vector<double> leaf_weights;
  int64_t n_targets;
  int aggregate;
  int post;
};

std::vector<double> tensor_doubles(const Tensor* t) {
  std::vector<double> v;
  if (t)
    for (int64_t i = 0; i < t->numel(); ++i) v.push_back(t->element_as_double(i));
  return v;
}

Ensemble read_ensemble(const NodeAttrs& ctx) {
  Ensemble e;
  e.n_targets = ctx.required_int("n_targets");
  e.aggregate = int(ctx.attr_int("aggregate_function", kSum));
  e.post = int(ctx.attr_int("post_transform", kNone));
  if (e.n_targets < 1) ctx.fail("n_targets must be >= 1");
  if (e.aggregate < kAverage || e.aggregate > kMax) ctx.fail("aggregate_function must be 0..3");
  if (e.post < kNone || e.post > kProbit) ctx.fail("post_transform must be 0..4");
  e.roots = ctx.required_ints("tree_roots");
  e.leaf_targets = ctx.required_ints("leaf_targetids");
  e.leaf_weights = tensor_doubles(ctx.attr_tensor("leaf_weights"));
  std::vector<int64_t> features = ctx.required_ints("nodes_featureids");
  std::vector<int64_t> true_ids = ctx.required_ints("nodes_truenodeids");
  std::vector<int64_t> false_ids = ctx.required_ints("nodes_falsenodeids");
  std::vector<int64_t> true_leafs = ctx.required_ints("nodes_trueleafs");
  std::vector<int64_t> false_leafs = ctx.required_ints("nodes_falseleafs");
  std::vector<int64_t> missing = ctx.attr_ints("nodes_missing_value_tracks_true");
  std::vector<double> modes = tensor_doubles(ctx.attr_tensor("nodes_modes"));
  std::vector<double> splits = tensor_doubles(ctx.attr_tensor("nodes_splits"));
  std::vector<double> members = tensor_doubles(ctx.attr_tensor("membership_values"));
  const size_t n = features.size();
  if (true_ids.size() != n || false_ids.size() != n || true_leafs.size() != n ||
      false_leafs.size() != n || modes.size() != n || splits.size() != n ||
      (!missing.empty() && missing.size() != n))
    ctx.fail("the nodes_* attributes must all have one entry per node");
  if (e.leaf_targets.size() != e.leaf_weights.size())
    ctx.fail("leaf_targetids and leaf_weights must have the same length");
  for (int64_t t : e.leaf_targets)
    if (t < 0 || t >= e.n_targets)
      ctx.fail("leaf_targetids holds " + std::to_string(t) + ", out of range");
  const int64_t num_leaves = int64_t(e.leaf_targets.size());
  size_t member_pos = 0;
  for (size_t i = 0; i < n; ++i) {
    TreeNode nd;
    nd.mode = int(modes[i]);
    if (nd.mode < kLeq || nd.mode > kMember) ctx.fail("nodes_modes holds an unknown mode");
    nd.feature = features[i];
    nd.split = splits[i];
    nd.missing_tracks_true = !missing.empty() && missing[i] != 0;
    nd.true_id = true_ids[i];
    nd.false_id = false_ids[i];
    nd.true_leaf = true_leafs[i] != 0;
    nd.false_leaf = false_leafs[i] != 0;
    if (nd.feature < 0) ctx.fail("nodes_featureids must be non-negative");
    for (auto [id, leaf] :
         {std::pair{nd.true_id, nd.true_leaf}, std::pair{nd.false_id, nd.false_leaf}})
      if (id < 0 || id >= (leaf ? num_leaves : int64_t(n)))
        ctx.fail("node " + std::to_string(i) + " points to " + (leaf ? "leaf " : "node ") +
                 std::to_string(id) + ", out of range");
    if (nd.mode == kMember) {
      // Each member node takes the next NaN-terminated run of membership_values.
      while (member_pos < members.size() && !std::isnan(members[member_pos]))
        nd.members.push_back(members[member_pos++]);
      ++member_pos;
    }
    e.nodes.push_back(std::move(nd));
  }
  for (int64_t r : e.roots)
    if (r < 0 || r >= int64_t(n))
      ctx.fail("tree_roots holds " + std::to_string(r) + ", out of range");
  return e;
}

bool goes_true(const TreeNode& nd, double x) {
  if (std::isnan(x) && nd.missing_tracks_true) return true;
  switch (nd.mode) {
    case kLeq:
      return x <= nd.split;
    case kLt:
      return x < nd.split;
    case kGte:
      return x >= nd.split;
    case kGt:
      return x > nd.split;
    case kEq:
      return x == nd.split;
    case kNeq:
      return x != nd.split;
    default:
      return std::find(nd.members.begin(), nd.members.end(), x) != nd.members.end();
  }
}

// Inverse error function: a rational first guess refined by Newton steps.
double erfinv(double y) {
  if (y <= -1) return -INFINITY;
  if (y >= 1) return INFINITY;
  const double a = 0.147, pi = 3.14159265358979323846;
  double ln = std::log(1 - y * y);
  double t = 2 / (pi * a) + ln / 2;
  double x = std::copysign(std::sqrt(std::sqrt(t * t - ln / a) - t), y);
  for (int i = 0; i < 3; ++i) x -= (std::erf(x) - y) / (2 / std::sqrt(pi) * std::exp(-x * x));
  return x;
}

void post_transform(int post, std::vector<double>& v) {
  if (post == kLogistic) {
    for (double& x : v) x = 1 / (1 + std::exp(-x));
  } else if (post == kProbit) {
    for (double& x : v) x = std::sqrt(2.0) * erfinv(2 * x - 1);
  } else if (post == kSoftmax || post == kSoftmaxZero) {
    // SOFTMAX_ZERO leaves zeros at zero and normalizes the rest.
    double mx = -INFINITY;
    for (double x : v)
      if (post == kSoftmax || x != 0) mx = std::max(mx, x);
    double sum = 0;
    for (double& x : v) {
      x = (post == kSoftmaxZero && x == 0) ? 0 : std::exp(x - mx);
      sum += x;
    }
    if (sum > 0)
      for (double& x : v) x /= sum;
  }
}

void infer_tree_ensemble(InferContext& ctx) {
  Ensemble e = read_ensemble(ctx);
  DType t = ctx.input_dtype(0);
  if (!dtype_is_float(t)) ctx.fail(std::string("X must be float, got ") + dtype_name(t));
  const Shape& s = ctx.input_shape(0);
  if (s.has_rank && s.rank() != 2)
    ctx.fail("X must be 2-D [N, F], got rank " + std::to_string(s.rank()));
  Dim rows = s.has_rank ? s.dims[0] : ctx.fresh_dim();
  ctx.set_output(0, t, Shape({rows, Dim::constant(e.n_targets)}));
}

void run_tree_ensemble(KernelContext& ctx) {
  Ensemble e = read_ensemble(ctx);
  const Tensor& x = ctx.input(0);
  if (x.rank() != 2) ctx.fail("X must be 2-D [N, F]");
  const int64_t rows = x.dim(0), features = x.dim(1);
  for (const TreeNode& nd : e.nodes)
    if (nd.feature >= features)
      ctx.fail("a node reads feature " + std::to_string(nd.feature) + " but X has " +
                   std::to_string(features),
               ErrorCode::kInvalidArgument);
  Tensor& y = ctx.output(0, x.dtype(), {rows, e.n_targets});
  const double type_max = x.dtype() == DType::kF64    ? std::numeric_limits<double>::max()
                          : x.dtype() == DType::kF16  ? 65504.0
                          : x.dtype() == DType::kBF16 ? 3.3895313892515355e38
                                                      : double(std::numeric_limits<float>::max());
  const size_t max_steps = e.nodes.size() + 1;  // a longer walk means the "tree" has a cycle
  std::vector<double> acc(size_t(e.n_targets));
  std::vector<int64_t> hits(size_t(e.n_targets));
  for (int64_t r = 0; r < rows; ++r) {
    const double init = e.aggregate == kMin ? INFINITY : e.aggregate == kMax ? -INFINITY : 0.0;
    std::fill(acc.begin(), acc.end(), init);
    std::fill(hits.begin(), hits.end(), 0);
    for (int64_t root : e.roots) {
      int64_t id = root;
      size_t steps = 0;
      int64_t leaf = -1;
      while (leaf < 0) {
        if (++steps > max_steps)
          ctx.fail("the tree at root " + std::to_string(root) + " has a cycle");
        const TreeNode& nd = e.nodes[size_t(id)];
        bool t = goes_true(nd, x.element_as_double(r * features + nd.feature));
        int64_t next = t ? nd.true_id : nd.false_id;
        if (t ? nd.true_leaf : nd.false_leaf) {
          leaf = next;
        } else {
          id = next;
        }
      }
      const size_t target = size_t(e.leaf_targets[size_t(leaf)]);
      const double w = e.leaf_weights[size_t(leaf)];
      ++hits[target];
      if (e.aggregate == kMin) {
        acc[target] = std::min(acc[target], w);
      } else if (e.aggregate == kMax) {
        acc[target] = std::max(acc[target], w);
      } else {
        acc[target] += w;
      }
    }
    for (size_t j = 0; j < acc.size(); ++j) {
      // A target no tree reached keeps the identity of the aggregate, clamped to X's type's
      // finite range for MIN/MAX as the ONNX reference does.
      if (hits[j] == 0 && e.aggregate == kMin) acc[j] = type_max;
      if (hits[j] == 0 && e.aggregate == kMax) acc[j] = -type_max;
      if (e.aggregate == kAverage && !e.roots.empty()) acc[j] /= double(e.roots.size());
    }
    post_transform(e.post, acc);
    dispatch_float(x.dtype(), ctx, [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* out = y.data<T>() + r * e.n_targets;
      for (size_t j = 0; j < acc.size(); ++j) out[j] = from_compute<T>(acc[j]);
    });
  }
}

}  // namespace

void register_ml_ops(Registry& r) {
  r.add({kTraining, "Adagrad", 1, PatternKind::kOpaque, infer_optimizer<Optimizer::kAdagrad>,
         run_optimizer<Optimizer::kAdagrad>});
  r.add({kTraining, "Adam", 1, PatternKind::kOpaque, infer_optimizer<Optimizer::kAdam>,
         run_optimizer<Optimizer::kAdam>});
  r.add({kTraining, "Momentum", 1, PatternKind::kOpaque, infer_optimizer<Optimizer::kMomentum>,
         run_optimizer<Optimizer::kMomentum>});
  r.add({kMl, "LabelEncoder", 1, PatternKind::kOpaque, infer_label_encoder, run_label_encoder});
  r.add({kMl, "Binarizer", 1, PatternKind::kElementwise, infer_binarizer, run_binarizer});
  r.add({kMl, "ArrayFeatureExtractor", 1, PatternKind::kOpaque, infer_array_feature_extractor,
         run_array_feature_extractor});
  r.add({kMl, "TreeEnsemble", 5, PatternKind::kOpaque, infer_tree_ensemble, run_tree_ensemble});
}

}  // namespace kiln::kernels
