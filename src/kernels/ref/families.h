// The op families of the reference kernels: one registration function per family, called from
// Registry::global() in this order. Adding an op touches its family's file and its tests.
#pragma once

namespace kiln::kernels {
class Registry;

void register_control_ops(Registry& r);       // control.cc: Constant, Identity, Dropout
void register_control_flow_ops(Registry& r);  // control_flow.cc: If, Loop, Scan
void register_elementwise_ops(
    Registry& r);  // elementwise*.cc: math, logic, activations, Cast, Where
void register_reduction_ops(
    Registry& r);  // reduction.cc: Reduce*, ArgMax/Min, Softmax, CumSum, TopK
void register_normalization_ops(Registry& r);  // normalization.cc: BatchNorm, LayerNorm, ...
void register_linalg_ops(Registry& r);         // linalg.cc: MatMul, Gemm, Einsum
void register_conv_ops(Registry& r);           // conv.cc: Conv, ConvTranspose
void register_pool_ops(Registry& r);           // pool.cc: MaxPool, AveragePool, Global*, LpPool
void register_resize_ops(Registry& r);         // resize.cc: Resize, Upsample
void register_shape_ops(Registry& r);          // shape_ops.cc: Reshape, Shape, Expand, Range, ...
void register_movement_ops(Registry& r);   // movement.cc: Transpose, Concat, Split, Slice, Pad, ...
void register_index_ops(Registry& r);      // index.cc: Gather*, Scatter*, OneHot, NonZero, ...
void register_attention_ops(Registry& r);  // attention.cc: Attention, RotaryEmbedding, ...
void register_loss_ops(Registry& r);  // loss.cc: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss
void register_quantize_ops(Registry& r);  // quantize.cc: QuantizeLinear, DequantizeLinear, ...
void register_sequence_model_ops(Registry& r);  // rnn.cc: RNN, GRU, LSTM
void register_signal_ops(Registry& r);  // signal.cc: DFT, STFT, windows, MelWeightMatrix, ...
void register_text_ops(Registry& r);    // text.cc: string ops, TfIdfVectorizer
void register_ml_ops(Registry& r);      // ml.cc: ai.onnx.ml and training-domain ops

}  // namespace kiln::kernels
