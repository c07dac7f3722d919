// RNN, GRU and LSTM on hidden sizes of 1 or 2, where every gate can be worked out by hand.
#include <cmath>

#include "op_test_util.h"

namespace kiln::testing {
namespace {

double sig(double x) { return 1 / (1 + std::exp(-x)); }

Tensor f32(Dims d, std::vector<float> v) { return make<float>(std::move(d), std::move(v)); }
Tensor scalar3(float v) { return f32({1, 1, 1}, {v}); }
ir::Attribute attr_strings_list(std::vector<std::string> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kStrings;
  a.strings = std::move(v);
  return a;
}

TEST(OpRnn, SimpleTwoSteps) {
  // h1 = tanh(0.5*1), h2 = tanh(0.5*2 + 0.5*h1)
  OpCall c{"RNN",
           {f32({2, 1, 1}, {1, 2}), scalar3(0.5f), scalar3(0.5f)},
           {{"hidden_size", attr_int(1)}},
           14,
           2};
  auto out = run_op(c);
  float h1 = std::tanh(0.5f), h2 = std::tanh(1.0f + 0.5f * h1);
  EXPECT_TRUE(tensors_near(out[0], f32({2, 1, 1, 1}, {h1, h2})));
  EXPECT_TRUE(tensors_near(out[1], f32({1, 1, 1}, {h2})));
}

TEST(OpRnn, ReverseAndBidirectional) {
  Tensor x = f32({2, 1, 1}, {1, 2});
  // Reverse: the sequence is read from t=1 down to t=0; Y stays indexed by t.
  OpCall rev{
      "RNN", {x, scalar3(0.5f), scalar3(0.5f)}, {{"direction", attr_string("reverse")}}, 7, 2};
  auto out = run_op(rev);
  float a = std::tanh(1.0f), b = std::tanh(0.5f + 0.5f * a);
  EXPECT_TRUE(tensors_near(out[0], f32({2, 1, 1, 1}, {b, a})));
  EXPECT_TRUE(tensors_near(out[1], f32({1, 1, 1}, {b})));
  OpCall bi{"RNN",
            {x, f32({2, 1, 1}, {0.5f, 0.5f}), f32({2, 1, 1}, {0.5f, 0.5f})},
            {{"direction", attr_string("bidirectional")}, {"hidden_size", attr_int(1)}},
            14,
            2};
  out = run_op(bi);
  float f1 = std::tanh(0.5f), f2 = std::tanh(1.0f + 0.5f * f1);
  EXPECT_TRUE(tensors_near(out[0], f32({2, 2, 1, 1}, {f1, b, f2, a})));
  EXPECT_TRUE(tensors_near(out[1], f32({2, 1, 1}, {f2, b})));
}

TEST(OpRnn, SequenceLensAndLayout) {
  // Batch of 2, lengths 2 and 1: Y past a row's length is 0, Y_h is its last valid state.
  Tensor x = f32({2, 2, 1}, {1, 3, 2, 4});  // [seq, batch, 1]
  Tensor lens = make<int32_t>({2}, {2, 1});
  OpCall c{"RNN", {x, scalar3(0.5f), scalar3(0.5f), Tensor(), lens}, {}, 14, 2};
  auto out = run_op(c);
  float h1 = std::tanh(0.5f), h2 = std::tanh(1.0f + 0.5f * h1), g1 = std::tanh(1.5f);
  EXPECT_TRUE(tensors_near(out[0], f32({2, 1, 2, 1}, {h1, g1, h2, 0})));
  EXPECT_TRUE(tensors_near(out[1], f32({1, 2, 1}, {h2, g1})));
  // layout=1: X is [batch, seq, 1], Y [batch, seq, dirs, hidden], Y_h [batch, dirs, hidden].
  OpCall l{"RNN",
           {f32({2, 2, 1}, {1, 2, 3, 4}), scalar3(0.5f), scalar3(0.5f), Tensor(), lens},
           {{"layout", attr_int(1)}},
           14,
           2};
  out = run_op(l);
  EXPECT_TRUE(tensors_near(out[0], f32({2, 2, 1, 1}, {h1, h2, g1, 0})));
  EXPECT_TRUE(tensors_near(out[1], f32({2, 1, 1}, {h2, g1})));
  // A length past the sequence is bad data.
  OpCall bad = c;
  bad.inputs[4] = make<int32_t>({2}, {3, 1});
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpRnn, ActivationsClipAndBias) {
  Tensor x = scalar3(1);
  OpCall relu{"RNN", {x, scalar3(-1), scalar3(0)}, {{"activations", attr_strings_list({"Relu"})}}};
  EXPECT_TRUE(tensors_near(run_op(relu)[0], f32({1, 1, 1, 1}, {0})));
  OpCall leaky{"RNN",
               {x, scalar3(-1), scalar3(0)},
               {{"activations", attr_strings_list({"LeakyRelu"})},
                {"activation_alpha", attr_floats({0.1f})}}};
  EXPECT_TRUE(tensors_near(run_op(leaky)[0], f32({1, 1, 1, 1}, {-0.1f})));
  OpCall clip{"RNN", {x, scalar3(10), scalar3(0)}, {{"clip", attr_float(1)}}};
  EXPECT_TRUE(tensors_near(run_op(clip)[0], f32({1, 1, 1, 1}, {std::tanh(1.0f)})));
  // B = [Wb, Rb] adds both biases; initial_h feeds R.
  OpCall bias{
      "RNN", {x, scalar3(0), scalar3(1), f32({1, 2}, {0.25f, 0.25f}), Tensor(), scalar3(1)}, {}};
  EXPECT_TRUE(tensors_near(run_op(bias)[0], f32({1, 1, 1, 1}, {std::tanh(1.5f)})));
}

TEST(OpRnn, DoubleAndHalf) {
  OpCall d{
      "RNN",
      {make<double>({1, 1, 1}, {1}), make<double>({1, 1, 1}, {0.5}), make<double>({1, 1, 1}, {0})},
      {}};
  EXPECT_TRUE(tensors_near(run_op(d)[0], make<double>({1, 1, 1, 1}, {std::tanh(0.5)}), 1e-12));
  OpCall h{"RNN",
           {make<Float16>({1, 1, 1}, {Float16(1.0f)}), make<Float16>({1, 1, 1}, {Float16(0.5f)}),
            make<Float16>({1, 1, 1}, {Float16(0.0f)})},
           {}};
  EXPECT_TRUE(
      tensors_near(run_op(h)[0], make<Float16>({1, 1, 1, 1}, {Float16(std::tanh(0.5f))}), 1e-3));
}

TEST(OpRnn, BadShapesFail) {
  OpCall c{"RNN", {scalar3(1), f32({1, 1, 2}, {1, 1}), scalar3(0)}, {}};  // W's input size 2 != 1
  EXPECT_THROW(run_op(c), Error);
  OpCall dir{"RNN", {scalar3(1), scalar3(1), scalar3(0)}, {{"direction", attr_string("sideways")}}};
  EXPECT_THROW(run_op(dir), Error);
  OpCall act{
      "RNN", {scalar3(1), scalar3(1), scalar3(0)}, {{"activations", attr_strings_list({"Nope"})}}};
  EXPECT_THROW(run_op(act), Error);
}

TEST(OpRnn, SymbolicShapes) {
  OpCall c{"LSTM",
           {f32({2, 1, 3}, std::vector<float>(6, 0)), f32({1, 8, 3}, std::vector<float>(24, 0)),
            f32({1, 8, 2}, std::vector<float>(16, 0))},
           {},
           14,
           3};
  c.input_shapes = {ir::Shape({ir::Dim::sym("seq"), ir::Dim::sym("batch"), ir::Dim::constant(3)}),
                    ir::Shape::of({1, 8, 3}), ir::Shape::of({1, 8, 2})};
  auto g = make_op_graph(c);
  const auto& n = g->nodes[0];
  EXPECT_EQ(g->values[size_t(n.outputs[0])].shape.to_string(), "[seq,1,batch,2]");
  EXPECT_EQ(g->values[size_t(n.outputs[1])].shape.to_string(), "[1,batch,2]");
  EXPECT_EQ(g->values[size_t(n.outputs[2])].shape.to_string(), "[1,batch,2]");
}

TEST(OpGru, LinearBeforeReset) {
  // X=0, W=0; R rows: z=0, r=0, h=1; Rb_h=1; h0=1 -> z = r = 0.5.
  Tensor w = f32({1, 3, 1}, {0, 0, 0}), r = f32({1, 3, 1}, {0, 0, 1});
  Tensor b = f32({1, 6}, {0, 0, 0, 0, 0, 1});
  OpCall c{"GRU", {scalar3(0), w, r, b, Tensor(), scalar3(1)}, {}, 14, 2};
  float want0 = 0.5f * std::tanh(1.5f) + 0.5f;  // tanh(Rh (r.h) + Rbh)
  EXPECT_TRUE(tensors_near(run_op(c)[1], f32({1, 1, 1}, {want0})));
  c.attrs["linear_before_reset"] = attr_int(1);
  float want1 = 0.5f * std::tanh(1.0f) + 0.5f;  // tanh(r.(Rh h + Rbh))
  EXPECT_TRUE(tensors_near(run_op(c)[1], f32({1, 1, 1}, {want1})));
}

TEST(OpLstm, GatesPeepholesAndInputForget) {
  Tensor w = f32({1, 4, 1}, {0, 0, 0, 0}), r = f32({1, 4, 1}, {0, 0, 0, 0});
  Tensor h0 = scalar3(0), c0 = scalar3(1);
  // All gate inputs 0: i=f=o=0.5, c~=0 -> C = 0.5, H = 0.5*tanh(0.5).
  OpCall c{"LSTM", {scalar3(0), w, r, Tensor(), Tensor(), h0, c0}, {}, 14, 3};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], f32({1, 1, 1, 1}, {0.5f * std::tanh(0.5f)})));
  EXPECT_TRUE(tensors_near(out[2], f32({1, 1, 1}, {0.5f})));
  // Peepholes P = [Pi, Po, Pf] = 1: i = f = sig(C0), o = sig(C).
  OpCall p{
      "LSTM", {scalar3(0), w, r, Tensor(), Tensor(), h0, c0, f32({1, 3}, {1, 1, 1})}, {}, 14, 3};
  out = run_op(p);
  double cn = sig(1);
  EXPECT_TRUE(tensors_near(out[2], f32({1, 1, 1}, {float(cn)})));
  EXPECT_TRUE(tensors_near(out[1], f32({1, 1, 1}, {float(sig(cn) * std::tanh(cn))})));
  // input_forget couples f = 1 - i: C = 0.5*C0 + 0.5*0.
  OpCall f{"LSTM",
           {scalar3(0), w, r, f32({1, 8}, {1, 0, 5, 0, 0, 0, 0, 0}), Tensor(), h0, c0},
           {{"input_forget", attr_int(1)}},
           14,
           3};
  EXPECT_TRUE(tensors_near(run_op(f)[2], f32({1, 1, 1}, {float(1 - sig(1))})));
}

}  // namespace
}  // namespace kiln::testing
