// String ops (StringNormalizer, StringConcat, StringSplit, RegexFullMatch) and TfIdfVectorizer.
//
// Case mapping is ASCII only (the "en_US" locale on ASCII text); bytes >= 0x80 pass through, so
// UTF-8 text is never corrupted, only left unmapped. RegexFullMatch uses std::regex (ECMAScript)
// in place of RE2: the two agree on the common subset (classes, \w \d \s \b, groups, repetition
// counts) that ONNX models use; a pattern std::regex cannot parse fails at load with the pattern.
// StringSplit follows Python's str.split (which the ONNX reference uses), including the
// whitespace mode for an empty delimiter. TfIdfVectorizer follows ONNX Runtime's counting rules
// (unigrams are counted once, not once per skip distance).
#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using ir::Dim;
using ir::Shape;

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}
std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

void check_string_input(const NodeAttrs& ctx, DType t, const char* what) {
  if (t != DType::kString)
    ctx.fail(std::string(what) + " must be a string tensor, got " + dtype_name(t));
}

// ---- StringNormalizer -------------------------------------------------------------------------

struct NormalizerAttrs {
  std::string action;  // LOWER, UPPER or NONE
  bool case_sensitive;
  std::set<std::string> stopwords;  // lowercased when !case_sensitive
};

NormalizerAttrs normalizer_attrs(const NodeAttrs& ctx) {
  NormalizerAttrs a;
  a.action = ctx.attr_string("case_change_action", "NONE");
  if (a.action != "LOWER" && a.action != "UPPER" && a.action != "NONE")
    ctx.fail("case_change_action must be LOWER, UPPER or NONE, got '" + a.action + "'");
  a.case_sensitive = ctx.attr_int("is_case_sensitive", 0) != 0;
  for (const std::string& w : ctx.attr_strings("stopwords"))
    a.stopwords.insert(a.case_sensitive ? w : ascii_lower(w));
  return a;
}

// Only [C] and [1, C] inputs are defined by the spec.
void check_normalizer_shape(const NodeAttrs& ctx, const Shape& s) {
  if (!s.has_rank) return;
  if (s.rank() != 1 && s.rank() != 2)
    ctx.fail("X must have shape [C] or [1, C], got rank " + std::to_string(s.rank()));
  if (s.rank() == 2 && s.dims[0].known_different(Dim::constant(1)))
    ctx.fail("X must have shape [C] or [1, C], got " + s.to_string());
}

void infer_string_normalizer(InferContext& ctx) {
  check_string_input(ctx, ctx.input_dtype(0), "X");
  const Shape& s = ctx.input_shape(0);
  check_normalizer_shape(ctx, s);
  NormalizerAttrs a = normalizer_attrs(ctx);
  if (!s.has_rank) {
    ctx.set_output(0, DType::kString, Shape::unranked());
  } else if (a.stopwords.empty()) {
    ctx.set_output(0, DType::kString, s);
  } else {
    std::vector<Dim> d = s.dims;
    d.back() = ctx.fresh_dim();  // how many words survive depends on the data
    ctx.set_output(0, DType::kString, Shape(d));
  }
}

void run_string_normalizer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  check_normalizer_shape(ctx, to_shape(x.dims()));
  NormalizerAttrs a = normalizer_attrs(ctx);
  const std::string* in = x.data<std::string>();
  std::vector<std::string> kept;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const std::string key = a.case_sensitive ? in[i] : ascii_lower(in[i]);
    if (a.stopwords.count(key)) continue;
    if (a.action == "LOWER") {
      kept.push_back(ascii_lower(in[i]));
    } else if (a.action == "UPPER") {
      kept.push_back(ascii_upper(in[i]));
    } else {
      kept.push_back(in[i]);
    }
  }
  // An all-stopword input yields one empty string rather than an empty tensor (spec).
  if (kept.empty()) kept.push_back("");
  Dims dims = x.dims();
  dims.back() = int64_t(kept.size());
  Tensor& y = ctx.output(0, DType::kString, dims);
  std::string* out = y.data<std::string>();
  for (size_t i = 0; i < kept.size(); ++i) out[i] = kept[i];
}

// ---- StringConcat -----------------------------------------------------------------------------

void infer_string_concat(InferContext& ctx) {
  check_string_input(ctx, ctx.input_dtype(0), "X");
  check_string_input(ctx, ctx.input_dtype(1), "Y");
  ctx.set_output(0, DType::kString,
                 broadcast_shapes(ctx, {ctx.input_shape(0), ctx.input_shape(1)}));
}

void run_string_concat(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Dims dims = broadcast_dims(ctx, a.dims(), b.dims());
  Tensor& y = ctx.output(0, DType::kString, dims);
  const std::string* pa = a.data<std::string>();
  const std::string* pb = b.data<std::string>();
  std::string* out = y.data<std::string>();
  BroadcastWalker w(dims, {a.dims(), b.dims()});
  for (int64_t i = 0; i < w.size(); ++i, w.next()) out[i] = pa[w.offset(0)] + pb[w.offset(1)];
}

// ---- StringSplit ------------------------------------------------------------------------------

// Python's str.isspace for ASCII.
bool is_py_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

// Python's str.split(sep or None, maxsplit); maxsplit < 0 means no limit.
std::vector<std::string> py_split(const std::string& s, const std::string& sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  int64_t budget = maxsplit < 0 ? INT64_MAX : maxsplit;
  const size_t n = s.size();
  size_t i = 0;
  if (sep.empty()) {
    for (; budget > 0; --budget) {
      while (i < n && is_py_space(s[i])) ++i;
      if (i == n) break;
      size_t j = i;
      while (i < n && !is_py_space(s[i])) ++i;
      parts.push_back(s.substr(j, i - j));
    }
    if (i < n) {  // the split budget ran out: the rest, without leading spaces, is one part
      while (i < n && is_py_space(s[i])) ++i;
      if (i != n) parts.push_back(s.substr(i));
    }
    return parts;
  }
  for (; budget > 0; --budget) {
    size_t pos = s.find(sep, i);
    if (pos == std::string::npos) break;
    parts.push_back(s.substr(i, pos - i));
    i = pos + sep.size();
  }
  parts.push_back(s.substr(i));
  return parts;
}

void infer_string_split(InferContext& ctx) {
  check_string_input(ctx, ctx.input_dtype(0), "X");
  const Shape& s = ctx.input_shape(0);
  if (!s.has_rank) {
    ctx.set_output(0, DType::kString, Shape::unranked());
  } else {
    std::vector<Dim> d = s.dims;
    d.push_back(ctx.fresh_dim());  // the most parts of any element: data-dependent
    ctx.set_output(0, DType::kString, Shape(d));
  }
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kI64, s);
}

void run_string_split(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::string delimiter = ctx.attr_string("delimiter", "");
  const int64_t maxsplit = ctx.attr_int("maxsplit", -1);
  const std::string* in = x.data<std::string>();
  std::vector<std::vector<std::string>> parts(size_t(x.numel()));
  int64_t width = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    parts[size_t(i)] = py_split(in[i], delimiter, maxsplit);
    width = std::max(width, int64_t(parts[size_t(i)].size()));
  }
  Dims ydims = x.dims();
  ydims.push_back(width);
  Tensor& y = ctx.output(0, DType::kString, ydims);
  std::string* out = y.data<std::string>();  // zero-initialized to "": the padding
  for (size_t i = 0; i < parts.size(); ++i)
    for (size_t k = 0; k < parts[i].size(); ++k) out[int64_t(i) * width + int64_t(k)] = parts[i][k];
  if (ctx.num_outputs() > 1) {
    Tensor& z = ctx.output(1, DType::kI64, x.dims());
    int64_t* counts = z.data<int64_t>();
    for (size_t i = 0; i < parts.size(); ++i) counts[i] = int64_t(parts[i].size());
  }
}

// ---- RegexFullMatch ---------------------------------------------------------------------------

constexpr size_t kMaxRegexInput = 4096;

std::regex compile_pattern(const NodeAttrs& ctx) {
  if (!ctx.has_attr("pattern")) ctx.fail("attribute 'pattern' is required");
  const std::string pattern = ctx.attr_string("pattern", "");
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    ctx.unsupported("pattern '" + pattern + "' is not supported: " + e.what());
  }
}

void infer_regex_full_match(InferContext& ctx) {
  check_string_input(ctx, ctx.input_dtype(0), "X");
  compile_pattern(ctx);  // reject a bad pattern at load time
  ctx.set_output(0, DType::kBool, ctx.input_shape(0));
}

void run_regex_full_match(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::regex re = compile_pattern(ctx);
  Tensor& y = ctx.output(0, DType::kBool, x.dims());
  const std::string* in = x.data<std::string>();
  bool* out = y.data<bool>();
  try {
    for (int64_t i = 0; i < x.numel(); ++i) {
      // libstdc++'s matcher recurses once per character: bound the input so a long string is an
      // error, not a stack overflow.
      if (in[i].size() > kMaxRegexInput)
        ctx.unsupported("RegexFullMatch on a string of " + std::to_string(in[i].size()) +
                        " bytes; at most " + std::to_string(kMaxRegexInput) + " are supported");
      out[i] = std::regex_match(in[i], re);
    }
  } catch (const std::regex_error& e) {  // error_complexity / error_stack on pathological input
    ctx.fail(std::string("regex match failed: ") + e.what(), ErrorCode::kInvalidArgument);
  }
}

// ---- TfIdfVectorizer --------------------------------------------------------------------------

// The validated attributes. The pool holds n-grams grouped by length: ngram_counts[k] is the
// first pool item of the (k+1)-grams. N-grams are numbered in pool order; the i-th one counts
// into output coordinate ngram_indexes[i].
struct TfIdfAttrs {
  int64_t min_gram = 1, max_gram = 1, max_skip = 0;
  std::string mode;
  std::vector<int64_t> ngram_counts, ngram_indexes;
  std::vector<float> weights;
  bool strings = false;
  std::vector<int64_t> pool_ints;
  std::vector<std::string> pool_strings;
  int64_t output_size = 0;
};

TfIdfAttrs tfidf_attrs(const NodeAttrs& ctx) {
  TfIdfAttrs a;
  a.min_gram = ctx.required_int("min_gram_length");
  a.max_gram = ctx.required_int("max_gram_length");
  a.max_skip = ctx.required_int("max_skip_count");
  if (!ctx.has_attr("mode")) ctx.fail("attribute 'mode' is required");
  a.mode = ctx.attr_string("mode", "");
  a.ngram_counts = ctx.required_ints("ngram_counts");
  a.ngram_indexes = ctx.required_ints("ngram_indexes");
  a.weights = ctx.attr_floats("weights");
  if (a.min_gram < 1 || a.max_gram < a.min_gram)
    ctx.fail("need 1 <= min_gram_length <= max_gram_length, got " + std::to_string(a.min_gram) +
             " and " + std::to_string(a.max_gram));
  if (a.max_skip < 0) ctx.fail("max_skip_count must be >= 0");
  if (a.mode != "TF" && a.mode != "IDF" && a.mode != "TFIDF")
    ctx.fail("mode must be TF, IDF or TFIDF, got '" + a.mode + "'");
  const bool has_ints = ctx.has_attr("pool_int64s"), has_strings = ctx.has_attr("pool_strings");
  if (has_ints == has_strings) ctx.fail("exactly one of pool_int64s and pool_strings must be set");
  a.strings = has_strings;
  int64_t pool_size;
  if (has_strings) {
    a.pool_strings = ctx.attr_strings("pool_strings");
    pool_size = int64_t(a.pool_strings.size());
  } else {
    a.pool_ints = ctx.attr_ints("pool_int64s");
    pool_size = int64_t(a.pool_ints.size());
  }
  // Count the n-grams the pool holds and check the groups are whole.
  int64_t num_ngrams = 0;
  for (size_t k = 0; k < a.ngram_counts.size(); ++k) {
    int64_t begin = a.ngram_counts[k];
    int64_t end = k + 1 < a.ngram_counts.size() ? a.ngram_counts[k + 1] : pool_size;
    if (begin < 0 || end < begin || end > pool_size || (end - begin) % int64_t(k + 1) != 0)
      ctx.fail("ngram_counts does not split the pool into whole " + std::to_string(k + 1) +
               "-grams");
    num_ngrams += (end - begin) / int64_t(k + 1);
  }
  if (int64_t(a.ngram_indexes.size()) != num_ngrams)
    ctx.fail("ngram_indexes has " + std::to_string(a.ngram_indexes.size()) +
             " entries but the pool holds " + std::to_string(num_ngrams) + " n-grams");
  for (int64_t v : a.ngram_indexes) {
    if (v < 0) ctx.fail("ngram_indexes must be non-negative");
    a.output_size = std::max(a.output_size, v + 1);
  }
  // Weights are read per output coordinate (as ONNX Runtime and the ONNX reference do).
  if (!a.weights.empty() && int64_t(a.weights.size()) < a.output_size)
    ctx.fail("weights has " + std::to_string(a.weights.size()) + " entries, need " +
             std::to_string(a.output_size));
  // The pool holds no n-gram longer than ngram_counts.size(): longer ones can never match, so
  // bound the counting work by the pool rather than by the attribute.
  a.max_gram = std::min<int64_t>(a.max_gram, int64_t(a.ngram_counts.size()));
  return a;
}

void infer_tfidf(InferContext& ctx) {
  TfIdfAttrs a = tfidf_attrs(ctx);
  DType t = ctx.input_dtype(0);
  if (a.strings ? t != DType::kString : (t != DType::kI32 && t != DType::kI64))
    ctx.fail(std::string("X must be ") + (a.strings ? "string" : "int32 or int64") +
             " to match the pool, got " + dtype_name(t));
  const Shape& s = ctx.input_shape(0);
  if (!s.has_rank) {
    ctx.set_output(0, DType::kF32, Shape::unranked());
    return;
  }
  if (s.rank() == 1) {
    ctx.set_output(0, DType::kF32, Shape({Dim::constant(a.output_size)}));
  } else if (s.rank() == 2) {
    ctx.set_output(0, DType::kF32, Shape({s.dims[0], Dim::constant(a.output_size)}));
  } else {
    ctx.fail("X must be 1-D or 2-D, got rank " + std::to_string(s.rank()));
  }
}

// Counts the pool's n-grams in each row of `items` ([rows, cols], row-major) into `counts`
// ([rows, output_size]).
template <class K>
void count_ngrams(const TfIdfAttrs& a, const std::vector<K>& pool, const K* items, int64_t rows,
                  int64_t cols, std::vector<int64_t>& counts) {
  // One lookup table per n-gram length: n-gram -> its number in pool order.
  std::vector<std::map<std::vector<K>, int64_t>> tables(size_t(a.max_gram) + 1);
  int64_t id = 0;
  for (size_t k = 0; k < a.ngram_counts.size(); ++k) {
    const int64_t n = int64_t(k + 1);
    int64_t begin = a.ngram_counts[k];
    int64_t end = k + 1 < a.ngram_counts.size() ? a.ngram_counts[k + 1] : int64_t(pool.size());
    for (int64_t p = begin; p < end; p += n, ++id) {
      if (n > a.max_gram) continue;
      std::vector<K> gram(pool.begin() + p, pool.begin() + p + n);
      tables[size_t(n)].emplace(std::move(gram), id);  // first occurrence wins
    }
  }
  std::vector<K> gram;
  for (int64_t r = 0; r < rows; ++r) {
    const K* row = items + r * cols;
    // Skips past the row's length select nothing: bound the loop by the row, not the attribute.
    for (int64_t dist = 1; dist <= std::min(a.max_skip, cols) + 1; ++dist) {
      // Unigrams do not depend on the skip distance: count them at distance 1 only.
      const int64_t first_n = dist == 1 ? a.min_gram : std::max<int64_t>(a.min_gram, 2);
      for (int64_t start = 0; start < cols; ++start) {
        for (int64_t n = first_n; n <= a.max_gram; ++n) {
          if (start + (n - 1) * dist >= cols) break;
          gram.clear();
          for (int64_t j = 0; j < n; ++j) gram.push_back(row[start + j * dist]);
          auto it = tables[size_t(n)].find(gram);
          if (it != tables[size_t(n)].end())
            ++counts[size_t(r * a.output_size + a.ngram_indexes[size_t(it->second)])];
        }
      }
    }
  }
}

void run_tfidf(KernelContext& ctx) {
  TfIdfAttrs a = tfidf_attrs(ctx);
  const Tensor& x = ctx.input(0);
  if (x.rank() != 1 && x.rank() != 2)
    ctx.fail("X must be 1-D or 2-D, got rank " + std::to_string(x.rank()));
  const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
  const int64_t cols = x.rank() == 2 ? x.dim(1) : x.dim(0);
  std::vector<int64_t> counts(size_t(rows * a.output_size), 0);
  if (a.strings) {
    if (x.dtype() != DType::kString) ctx.fail("X must be a string tensor to match pool_strings");
    count_ngrams<std::string>(a, a.pool_strings, x.data<std::string>(), rows, cols, counts);
  } else {
    std::vector<int64_t> items(size_t(x.numel()));
    if (x.dtype() != DType::kI32 && x.dtype() != DType::kI64)
      ctx.fail("X must be int32 or int64 to match pool_int64s");
    for (int64_t i = 0; i < x.numel(); ++i) items[size_t(i)] = x.element_as_int(i);
    count_ngrams<int64_t>(a, a.pool_ints, items.data(), rows, cols, counts);
  }
  Dims ydims = x.rank() == 2 ? Dims{rows, a.output_size} : Dims{a.output_size};
  Tensor& y = ctx.output(0, DType::kF32, ydims);
  float* out = y.data<float>();
  for (size_t i = 0; i < counts.size(); ++i) {
    const float w = a.weights.empty() ? 1.0f : a.weights[i % size_t(a.output_size)];
    const float c = float(counts[i]);
    if (a.mode == "TF") {
      out[i] = c;
    } else if (a.mode == "IDF") {
      out[i] = counts[i] > 0 ? w : 0.0f;
    } else {
      out[i] = c * w;
    }
  }
}

}  // namespace

void register_text_ops(Registry& r) {
  r.add({"", "StringNormalizer", 10, PatternKind::kOpaque, infer_string_normalizer,
         run_string_normalizer});
  r.add({"", "StringConcat", 20, PatternKind::kBroadcast, infer_string_concat, run_string_concat});
  r.add({"", "StringSplit", 20, PatternKind::kOpaque, infer_string_split, run_string_split});
  r.add({"", "RegexFullMatch", 20, PatternKind::kElementwise, infer_regex_full_match,
         run_regex_full_match});
  r.add({"", "TfIdfVectorizer", 9, PatternKind::kOpaque, infer_tfidf, run_tfidf});
}

}  // namespace kiln::kernels
