// Tensors in GPU memory: what a host can and cannot do with them, how sessions take them (a CPU
// session refuses them; a CUDA session reads and writes them in place), and the clear errors
// without a GPU. The tests that need a GPU skip without one (ctest label gpu runs them).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "cuda/cuda_test_util.h"
#ifdef KILN_WITH_CUDA
#include "devices/cuda/cuda_api.h"
#include "devices/cuda/cuda_device.h"
#endif
#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"

namespace kiln::testing {
namespace {

// y = relu(x * w + b) over [n, 4]: a model small enough to build in the test.
std::string small_model() {
  dev::ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {-1, 4});
  b.init_random("w", {4, 3}, 1.0f, 7);
  b.init_random("b", {3}, 1.0f, 8);
  b.output("y", onnx::TensorProto::FLOAT, {-1, 3});
  b.node("MatMul", {"x", "w"}, {"xw"});
  b.node("Add", {"xw", "b"}, {"xwb"});
  b.node("Relu", {"xwb"}, {"y"});
  return b.serialize();
}

Session cuda_session(bool outputs_on_device = false) {
  SessionOptions so;
  so.device = Device::kCuda;
  so.outputs_on_device = outputs_on_device;
  return session_from_bytes(small_model(), so);
}

void expect_error(const std::function<void()>& f, ErrorCode code, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected kiln::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DeviceTensors, GpuViewIsNotHostAddressable) {
  static float fake_device_memory[6];  // never dereferenced through the view
  Tensor t = Tensor::device_view(DType::kF32, {2, 3}, fake_device_memory);
  EXPECT_EQ(t.device(), Device::kCuda);
  EXPECT_FALSE(t.on_host());
  EXPECT_EQ(t.raw_data(), fake_device_memory);
  EXPECT_EQ(t.to_string(), "f32[2,3] on cuda");
  EXPECT_EQ(t.reshaped({3, 2}).device(), Device::kCuda);
  expect_error([&] { t.data<float>(); }, ErrorCode::kInvalidArgument, "to(Device::kCpu)");
  expect_error([&] { t.element_as_double(0); }, ErrorCode::kInvalidArgument, "device 'cuda'");
  expect_error([&] { Tensor::device_view(DType::kF32, {2}, fake_device_memory, Device::kAuto); },
               ErrorCode::kInvalidArgument, "auto");
  expect_error([&] { Tensor::device_view(DType::kString, {2}, fake_device_memory); },
               ErrorCode::kInvalidArgument, "string");
  // Host tensors: to(kCpu) is the tensor itself, on_device(kCpu) an ordinary tensor.
  Tensor h = Tensor::from_vector<float>({2}, {1.f, 2.f});
  EXPECT_EQ(h.device(), Device::kCpu);
  EXPECT_EQ(h.to(Device::kCpu).raw_data(), h.raw_data());
  EXPECT_EQ(Tensor::on_device(DType::kF32, {3}, Device::kCpu).device(), Device::kCpu);
}

TEST(DeviceTensors, CpuSessionRejectsGpuTensors) {
  Session s = session_from_bytes(small_model());
  static float fake_device_memory[8];
  Tensor gx = Tensor::device_view(DType::kF32, {2, 4}, fake_device_memory);
  expect_error([&] { s.run({{"x", gx}}); }, ErrorCode::kInvalidArgument, "input 'x'");
  Tensor x = random_tensor(DType::kF32, {2, 4});
  s.run({{"x", x}});  // the plan exists: the fast path checks too
  expect_error([&] { s.run({{"x", gx}}); }, ErrorCode::kInvalidArgument, "to(Device::kCpu)");
  static float fake_out[6];
  Tensor gy = Tensor::device_view(DType::kF32, {2, 3}, fake_out);
  expect_error([&] { s.run({{"x", x}}, {{"y", gy}}); }, ErrorCode::kInvalidArgument, "output 'y'");
}

TEST(DeviceTensors, WithoutGpuAllocationIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  expect_error([] { Tensor::on_device(DType::kF32, {4}, Device::kCuda); }, ErrorCode::kUnsupported,
               "");
  Tensor h = Tensor::from_vector<float>({2}, {1.f, 2.f});
  expect_error([&] { h.to(Device::kCuda); }, ErrorCode::kUnsupported, "");
}

TEST(DeviceTensors, GpuRoundTrip) {
  KILN_REQUIRE_GPU();
  Tensor h = random_tensor(DType::kF32, {3, 5});
  Tensor g = h.to(Device::kCuda);
  EXPECT_EQ(g.device(), Device::kCuda);
  EXPECT_TRUE(g.owns_data());
  Tensor g2 = g.clone();  // device to device
  Tensor back = g2.to(Device::kCpu);
  EXPECT_TRUE(tensors_near(back, h, 0, 0));
}

TEST(DeviceTensors, CudaSessionReadsAndWritesGpuTensorsInPlace) {
  KILN_REQUIRE_GPU();
  Session cpu = session_from_bytes(small_model()), gpu = cuda_session();
  for (int64_t n : {2, 2, 2, 5}) {  // repeated shapes replay the CUDA graph
    Tensor x = random_tensor(DType::kF32, {n, 4}, -1, 1, uint64_t(n) + 3);
    Tensor want = cpu.run({{"x", x}}).at("y");
    // GPU input, host output.
    Tensor got = gpu.run({{"x", x.to(Device::kCuda)}}).at("y");
    EXPECT_TRUE(got.on_host());
    EXPECT_TRUE(tensors_near(got, want, 1e-5, 1e-4));
    // GPU input and a caller's GPU output: written in place.
    Tensor y = Tensor::on_device(DType::kF32, {n, 3}, Device::kCuda);
    gpu.run({{"x", x.to(Device::kCuda)}}, {{"y", y}});
    EXPECT_TRUE(tensors_near(y.to(Device::kCpu), want, 1e-5, 1e-4));
  }
  // outputs_on_device: run(inputs) leaves the outputs on the GPU.
  Session resident = cuda_session(/*outputs_on_device=*/true);
  Tensor x = random_tensor(DType::kF32, {2, 4});
  for (int r = 0; r < 3; ++r) {
    Tensor y = resident.run({{"x", x}}).at("y");
    EXPECT_EQ(y.device(), Device::kCuda);
    EXPECT_TRUE(tensors_near(y.to(Device::kCpu), cpu.run({{"x", x}}).at("y"), 1e-5, 1e-4));
  }
}

// RunOptions: CPU sessions ignore the stream; the overloads run as the plain ones.
TEST(DeviceTensors, RunOptionsOverloadsOnCpu) {
  Session s = session_from_bytes(small_model());
  Tensor x = random_tensor(DType::kF32, {3, 4});
  Tensor want = s.run({{"x", x}}).at("y");
  static int not_a_stream;
  RunOptions ro;
  ro.cuda_stream = &not_a_stream;  // never used by a CPU session
  EXPECT_TRUE(tensors_near(s.run({{"x", x}}, ro).at("y"), want, 0, 0));
  Tensor y(DType::kF32, {3, 3});
  s.run({{"x", x}}, {{"y", y}}, ro);
  EXPECT_TRUE(tensors_near(y, want, 0, 0));
}

#ifdef KILN_WITH_CUDA
void CUDA_CB sleep_on_stream(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

// A run given the caller's stream reads GPU inputs that an asynchronous copy queued there
// writes (without the caller synchronizing), step by step and replaying its graph. The copy
// (from pinned memory) waits 100 ms behind a host function on that stream: a run that did not
// wait for the stream would read the input before it is written.
TEST(DeviceTensors, RunWaitsForTheCallersStream) {
  KILN_REQUIRE_GPU();
  Session cpu = session_from_bytes(small_model()), gpu = cuda_session();
  const devices::cuda::Driver& d = devices::cuda::driver();
  devices::cuda::CudaDevice::get(0).make_current();
  CUstream caller = nullptr;
  devices::cuda::check(d.cuStreamCreate(&caller, CU_STREAM_NON_BLOCKING), "test stream");
  RunOptions ro;
  ro.cuda_stream = caller;
  const size_t bytes = 64 * 4 * sizeof(float);
  void* pinned = nullptr;
  devices::cuda::check(d.cuMemAllocHost(&pinned, bytes), "pinned test memory");
  for (int r = 0; r < 3; ++r) {
    Tensor x = random_tensor(DType::kF32, {64, 4}, -1, 1, uint64_t(r) + 40);
    std::memcpy(pinned, x.raw_data(), bytes);  // the previous run has finished with it
    Tensor gx = Tensor::on_device(DType::kF32, {64, 4}, Device::kCuda);
    devices::cuda::check(d.cuLaunchHostFunc(caller, sleep_on_stream, nullptr), "test delay");
    devices::cuda::check(
        d.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(gx.raw_data()), pinned, bytes, caller),
        "test copy");
    Tensor got = gpu.run({{"x", gx}}, ro).at("y");
    EXPECT_TRUE(tensors_near(got, cpu.run({{"x", x}}).at("y"), 1e-5, 1e-4)) << "run " << r;
  }
  d.cuStreamSynchronize(caller);
  d.cuMemFreeHost(pinned);
  d.cuStreamDestroy(caller);
}
#endif

}  // namespace
}  // namespace kiln::testing
