// Tests of the string ops and TfIdfVectorizer against hand-computed results.
#include "op_test_util.h"

namespace kiln::testing {
namespace {

using S = std::string;

ir::Attribute attr_strings(std::vector<std::string> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kStrings;
  a.strings = std::move(v);
  return a;
}

TEST(OpText, StringNormalizerStopwordsAndCase) {
  OpCall c{"StringNormalizer",
           {make<S>({6}, {"monday", "tuesday", "Monday", "wed", "MONDAY", "a1"})},
           {{"stopwords", attr_strings({"monday"})}, {"case_change_action", attr_string("UPPER")}},
           10};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<S>({3}, {"TUESDAY", "WED", "A1"})));
  // Case-sensitive: only the exact stopword goes; LOWER keeps non-letters.
  c.attrs["is_case_sensitive"] = attr_int(1);
  c.attrs["case_change_action"] = attr_string("LOWER");
  EXPECT_TRUE(
      tensors_near(run_op(c)[0], make<S>({5}, {"tuesday", "monday", "wed", "monday", "a1"})));
}

TEST(OpText, StringNormalizerTwoDimAndEmptyResult) {
  OpCall c{
      "StringNormalizer", {make<S>({1, 2}, {"x", "X"})}, {{"stopwords", attr_strings({"x"})}}, 10};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<S>({1, 1}, {""})));
  OpCall d{"StringNormalizer", {make<S>({2}, {"Ab", "cD"})}, {}, 10};
  EXPECT_TRUE(tensors_near(run_op(d)[0], make<S>({2}, {"Ab", "cD"})));
}

TEST(OpText, StringNormalizerRejectsBadShape) {
  OpCall c{"StringNormalizer", {make<S>({2, 2}, {"a", "b", "c", "d"})}, {}, 10};
  EXPECT_THROW(run_op(c), Error);
  OpCall d{"StringNormalizer",
           {make<S>({1}, {"a"})},
           {{"case_change_action", attr_string("TITLE")}},
           10};
  EXPECT_THROW(run_op(d), Error);
}

TEST(OpText, StringNormalizerSymbolicShape) {
  OpCall c{
      "StringNormalizer", {make<S>({1, 2}, {"a", "b"})}, {{"stopwords", attr_strings({"a"})}}, 10};
  c.input_shapes = {ir::Shape({ir::Dim::constant(1), ir::Dim::sym("n")})};
  auto g = make_op_graph(c);
  const ir::Shape& s = g->values[g->nodes[0].outputs[0]].shape;
  ASSERT_EQ(s.rank(), 2);
  EXPECT_TRUE(s.dims[0].known_equal(ir::Dim::constant(1)));
  EXPECT_FALSE(s.dims[1].is_const());
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<S>({1, 1}, {"b"})));
}

TEST(OpText, StringConcatBroadcasts) {
  OpCall c{"StringConcat", {make<S>({2, 1}, {"a", "b"}), make<S>({3}, {"1", "", "é"})}, {}, 20};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<S>({2, 3}, {"a1", "a", "aé", "b1", "b", "bé"})));
  OpCall s{"StringConcat", {Tensor::scalar<S>("x"), Tensor::scalar<S>("y")}, {}, 20};
  EXPECT_TRUE(tensors_near(run_op(s)[0], Tensor::scalar<S>("xy")));
  OpCall bad{"StringConcat", {make<S>({2}, {"a", "b"}), make<S>({3}, {"1", "2", "3"})}, {}, 20};
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpText, StringSplitWithDelimiter) {
  OpCall c{
      "StringSplit", {make<S>({3}, {"a,b,,c", "", "x"})}, {{"delimiter", attr_string(",")}}, 20, 2};
  auto out = run_op(c);
  EXPECT_TRUE(
      tensors_near(out[0], make<S>({3, 4}, {"a", "b", "", "c", "", "", "", "", "x", "", "", ""})));
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({3}, {4, 1, 1})));
  c.attrs["maxsplit"] = attr_int(1);
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<S>({3, 2}, {"a", "b,,c", "", "", "x", ""})));
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({3}, {2, 1, 1})));
}

TEST(OpText, StringSplitWhitespaceAndEmpty) {
  // No delimiter: Python's str.split() — runs of whitespace, no empty parts.
  OpCall c{"StringSplit", {make<S>({2, 1}, {"  hello  world \t", "   "})}, {}, 20, 2};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<S>({2, 1, 2}, {"hello", "world", "", ""})));
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({2, 1}, {2, 0})));
  c.attrs["maxsplit"] = attr_int(0);
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<S>({2, 1, 1}, {"hello  world \t", ""})));
  OpCall e{"StringSplit", {Tensor(DType::kString, {0})}, {}, 20, 2};
  out = run_op(e);
  EXPECT_EQ(out[0].dims(), (Dims{0, 0}));
  EXPECT_EQ(out[1].dims(), (Dims{0}));
}

TEST(OpText, RegexFullMatch) {
  OpCall c{"RegexFullMatch",
           {make<S>({2, 2}, {"www.google.com", "www.facebook.com", "www.bbc.co.uk", "google.com"})},
           {{"pattern", attr_string(R"(www\.[\w.-]+\.\bcom\b)")}},
           20};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<bool>({2, 2}, {true, true, false, false})));
  OpCall e{"RegexFullMatch",
           {make<S>({2}, {"john@gmail.com", "x@hotmail.com"})},
           {{"pattern", attr_string(R"((\W|^)[\w.\-]{0,25}@(yahoo|gmail)\.com(\W|$))")}},
           20};
  EXPECT_TRUE(tensors_near(run_op(e)[0], make<bool>({2}, {true, false})));
  OpCall bad{"RegexFullMatch", {make<S>({1}, {"a"})}, {{"pattern", attr_string("(a")}}, 20};
  EXPECT_THROW(run_op(bad), Error);
}

// Pool: unigrams {2, 3, 5, 4} then bigrams {(5,6), (7,8), (6,7)} (the ONNX doc example's pool).
OpCall tfidf_call(Tensor x, int64_t min_gram, int64_t max_gram, int64_t skip, S mode) {
  return OpCall{"TfIdfVectorizer",
                {std::move(x)},
                {{"min_gram_length", attr_int(min_gram)},
                 {"max_gram_length", attr_int(max_gram)},
                 {"max_skip_count", attr_int(skip)},
                 {"mode", attr_string(mode)},
                 {"ngram_counts", attr_ints({0, 4})},
                 {"ngram_indexes", attr_ints({0, 1, 2, 3, 4, 5, 6})},
                 {"pool_int64s", attr_ints({2, 3, 5, 4, 5, 6, 7, 8, 6, 7})}},
                9};
}

TEST(OpText, TfIdfBigramsWithSkips) {
  Tensor x = make<int32_t>({2, 6}, {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8});
  // Bigrams only, no skips: row 1 has (6,7) and (5,6).
  auto y = run_op(tfidf_call(x, 2, 2, 0, "TF"))[0];
  EXPECT_TRUE(tensors_near(y, make<float>({2, 7}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1})));
  // Unigrams and bigrams with up to 5 skips: unigrams are counted once (row 0: three 3s);
  // row 1 has 5, (5,6) and (6,7) at distance 1 and (7,8) at distance 3.
  y = run_op(tfidf_call(x, 1, 2, 5, "TF"))[0];
  EXPECT_TRUE(tensors_near(y, make<float>({2, 7}, {0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1})));
}

TEST(OpText, TfIdfModesAndStrings) {
  OpCall c{"TfIdfVectorizer",
           {make<S>({5}, {"a", "b", "a", "c", "a"})},
           {{"min_gram_length", attr_int(1)},
            {"max_gram_length", attr_int(1)},
            {"max_skip_count", attr_int(0)},
            {"mode", attr_string("TFIDF")},
            {"ngram_counts", attr_ints({0})},
            {"ngram_indexes", attr_ints({1, 0})},
            {"weights", attr_floats({0.5f, 2.0f})},
            {"pool_strings", attr_strings({"a", "c"})}},
           9};
  // "a" (3 times) goes to coordinate 1, "c" (once) to 0; weights are per output coordinate.
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({2}, {0.5f, 6.0f})));
  c.attrs["mode"] = attr_string("IDF");
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({2}, {0.5f, 2.0f})));
  c.attrs["pool_int64s"] = attr_ints({1, 2});
  EXPECT_THROW(run_op(c), Error);  // both pools set
}

TEST(OpText, TfIdfShapes) {
  OpCall c = tfidf_call(make<int64_t>({2, 3}, {2, 3, 2, 4, 4, 4}), 1, 1, 0, "TF");
  c.input_shapes = {ir::Shape({ir::Dim::sym("n"), ir::Dim::sym("c")})};
  auto g = make_op_graph(c);
  const ir::Shape& s = g->values[g->nodes[0].outputs[0]].shape;
  ASSERT_EQ(s.rank(), 2);
  EXPECT_EQ(s.dims[0].symbol, "n");
  EXPECT_TRUE(s.dims[1].known_equal(ir::Dim::constant(7)));
  EXPECT_TRUE(
      tensors_near(run_op(c)[0], make<float>({2, 7}, {2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0})));
  OpCall bad = tfidf_call(make<float>({2}, {1, 2}), 1, 1, 0, "TF");
  EXPECT_THROW(run_op(bad), Error);
}

}  // namespace
}  // namespace kiln::testing
