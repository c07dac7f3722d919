// Kernel -> object file (codegen, O3, machine code) and object file -> callable code (ORC).
//
// Compiles share nothing mutable: each builds its own LLVMContext, module and TargetMachine, so any
// number run at once. The LLJIT is created once per process on first use and never destroyed
// (kernels held by static caches may outlive every other static).
//
// Each loaded object gets its own JITDylib rather than only a resource tracker in the main one: the
// same kernel (same symbol) can then be loaded again while an older copy is still held by a plan
// (after a cache eviction, say) without a duplicate-definition error. The main JITDylib holds the
// runtime symbols generated code calls (kiln_parallel_for, libm, memset/memcpy that LLVM may
// introduce) as absolute addresses of this process: libkiln.so hides its symbols, so a dlsym-based
// lookup could not find kiln_parallel_for. Every kernel JITDylib links against it.
#include "jit/jit.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "devices/cpu.h"
#include "engine/log.h"
#include "jit/codegen.h"
#include "jit/host_target.h"
#include "kiln/error.h"
#include "llvm/ExecutionEngine/Orc/Core.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/DiagnosticInfo.h"
#include "llvm/IR/DiagnosticPrinter.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

namespace kiln::jit {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw Error(ErrorCode::kInternal, msg); }

std::string message(llvm::Error e) { return llvm::toString(std::move(e)); }

void init_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

std::unique_ptr<llvm::TargetMachine> make_target_machine(const CodegenTarget& t) {
  init_llvm();
  const std::string triple = llvm::sys::getProcessTriple();
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, err);
  if (!target) fail("LLVM has no target for " + triple + ": " + err);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(
      target->createTargetMachine(triple, t.cpu, t.features, options, llvm::Reloc::PIC_,
                                  llvm::CodeModel::Small, llvm::CodeGenOptLevel::Aggressive));
  if (!tm) fail("LLVM cannot create a target machine for " + triple + " (" + t.cpu + ")");
  return tm;
}

/// A kernel's module with everything it lives in.
struct Built {
  std::unique_ptr<llvm::LLVMContext> ctx;
  std::unique_ptr<llvm::TargetMachine> tm;
  std::unique_ptr<llvm::Module> module;
};

Built build(const Kernel& k, const std::string& symbol, bool optimize) {
  Built b;
  b.ctx = std::make_unique<llvm::LLVMContext>();
  // Optimization remarks and warnings ("loop not vectorized" for a loop that asked for it) are not
  // errors; they would only clutter stderr.
  b.ctx->setDiagnosticHandlerCallBack(
      [](const llvm::DiagnosticInfo* info, void*) {
        if (info->getSeverity() != llvm::DS_Error) return;
        std::string text;
        llvm::raw_string_ostream os(text);
        llvm::DiagnosticPrinterRawOStream printer(os);
        info->print(printer);
        engine::log(LogLevel::kWarning, LogLevel::kError, "LLVM: " + os.str());
      },
      nullptr);
  const CodegenTarget target = CodegenTarget::host();
  b.tm = make_target_machine(target);
  b.module = generate_module(k, symbol, *b.ctx, target);
  b.module->setTargetTriple(b.tm->getTargetTriple().str());
  b.module->setDataLayout(b.tm->createDataLayout());
  if (!optimize) return b;

  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  pto.LoopVectorization = true;
  pto.SLPVectorization = true;
  pto.LoopInterleaving = true;
  pto.LoopUnrolling = true;
  // Registers the TargetMachine's TargetIRAnalysis (its TTI drives the vectorizer's costs).
  llvm::PassBuilder pb(b.tm.get(), pto);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(*b.module, mam);
  return b;
}

/// Host functions generated code may call, by name.
struct RuntimeSymbol {
  const char* name;
  void* address;
};

template <typename F>
void* addr(F* f) {
  return reinterpret_cast<void*>(f);
}

std::vector<RuntimeSymbol> runtime_symbols() {
  using F1 = float (*)(float);
  using D1 = double (*)(double);
  using F2 = float (*)(float, float);
  using D2 = double (*)(double, double);
  return {
      {"kiln_parallel_for", addr(&kiln_parallel_for)},
      // LLVM turns store loops into these.
      {"memset", addr(static_cast<void* (*)(void*, int, size_t)>(&::memset))},
      {"memcpy", addr(static_cast<void* (*)(void*, const void*, size_t)>(&::memcpy))},
      {"memmove", addr(static_cast<void* (*)(void*, const void*, size_t)>(&::memmove))},
      // Called by the code generator (rare intrinsics, f64) or by LLVM's lowering of frem and its
      // library-call simplifications.
      {"fmodf", addr(static_cast<F2>(&::fmodf))},
      {"fmod", addr(static_cast<D2>(&::fmod))},
      {"powf", addr(static_cast<F2>(&::powf))},
      {"pow", addr(static_cast<D2>(&::pow))},
      {"expf", addr(static_cast<F1>(&::expf))},
      {"exp", addr(static_cast<D1>(&::exp))},
      {"exp2f", addr(static_cast<F1>(&::exp2f))},
      {"exp2", addr(static_cast<D1>(&::exp2))},
      {"logf", addr(static_cast<F1>(&::logf))},
      {"log", addr(static_cast<D1>(&::log))},
      {"ldexpf", addr(static_cast<float (*)(float, int)>(&::ldexpf))},
      {"ldexp", addr(static_cast<double (*)(double, int)>(&::ldexp))},
      {"sqrtf", addr(static_cast<F1>(&::sqrtf))},
      {"sqrt", addr(static_cast<D1>(&::sqrt))},
      {"roundevenf", addr(static_cast<F1>(&::roundevenf))},
      {"roundeven", addr(static_cast<D1>(&::roundeven))},
      {"sinf", addr(static_cast<F1>(&::sinf))},
      {"sin", addr(static_cast<D1>(&::sin))},
      {"cosf", addr(static_cast<F1>(&::cosf))},
      {"cos", addr(static_cast<D1>(&::cos))},
      {"sincosf", addr(static_cast<void (*)(float, float*, float*)>(&::sincosf))},
      {"sincos", addr(static_cast<void (*)(double, double*, double*)>(&::sincos))},
      {"tanf", addr(static_cast<F1>(&::tanf))},
      {"tan", addr(static_cast<D1>(&::tan))},
      {"tanhf", addr(static_cast<F1>(&::tanhf))},
      {"tanh", addr(static_cast<D1>(&::tanh))},
      {"erff", addr(static_cast<F1>(&::erff))},
      {"erf", addr(static_cast<D1>(&::erf))},
      {"asinf", addr(static_cast<F1>(&::asinf))},
      {"asin", addr(static_cast<D1>(&::asin))},
      {"acosf", addr(static_cast<F1>(&::acosf))},
      {"acos", addr(static_cast<D1>(&::acos))},
      {"atanf", addr(static_cast<F1>(&::atanf))},
      {"atan", addr(static_cast<D1>(&::atan))},
      {"sinhf", addr(static_cast<F1>(&::sinhf))},
      {"sinh", addr(static_cast<D1>(&::sinh))},
      {"coshf", addr(static_cast<F1>(&::coshf))},
      {"cosh", addr(static_cast<D1>(&::cosh))},
      {"asinhf", addr(static_cast<F1>(&::asinhf))},
      {"asinh", addr(static_cast<D1>(&::asinh))},
      {"acoshf", addr(static_cast<F1>(&::acoshf))},
      {"acosh", addr(static_cast<D1>(&::acosh))},
      {"atanhf", addr(static_cast<F1>(&::atanhf))},
      {"atanh", addr(static_cast<D1>(&::atanh))},
  };
}

/// The process-wide LLJIT (created on first use, never destroyed).
llvm::orc::LLJIT& the_jit() {
  static std::once_flag once;
  static llvm::orc::LLJIT* jit = nullptr;
  static std::string error;
  std::call_once(once, [] {
    init_llvm();
    auto created = llvm::orc::LLJITBuilder().create();
    if (!created) {
      error = message(created.takeError());
      return;
    }
    llvm::orc::LLJIT* j = created->release();
    j->getExecutionSession().setErrorReporter([](llvm::Error e) {
      engine::log(LogLevel::kWarning, LogLevel::kWarning, "LLVM JIT: " + message(std::move(e)));
    });
    llvm::orc::SymbolMap symbols;
    for (const RuntimeSymbol& s : runtime_symbols()) {
      symbols[j->mangleAndIntern(s.name)] = llvm::orc::ExecutorSymbolDef(
          llvm::orc::ExecutorAddr::fromPtr(s.address),
          llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
    }
    if (llvm::Error e =
            j->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(symbols)))) {
      error = message(std::move(e));
      return;
    }
    jit = j;
  });
  if (!jit) fail("cannot create the LLVM JIT: " + error);
  return *jit;
}

/// A loaded kernel: owns its JITDylib, whose code is freed when the kernel is destroyed.
class OrcKernel final : public CompiledKernel {
 public:
  OrcKernel(llvm::orc::JITDylib& jd, KernelFn fn, const std::string& symbol, size_t bytes)
      : jd_(jd) {
    fn_ = fn;
    symbol_ = symbol;
    object_bytes_ = bytes;
  }
  ~OrcKernel() override { remove(the_jit(), jd_, symbol_); }

  static void remove(llvm::orc::LLJIT& jit, llvm::orc::JITDylib& jd, const std::string& symbol) {
    if (llvm::Error e = jit.getExecutionSession().removeJITDylib(jd)) {
      engine::log(LogLevel::kWarning, LogLevel::kWarning,
                  "freeing the code of kernel " + symbol + ": " + message(std::move(e)));
    }
  }

 private:
  llvm::orc::JITDylib& jd_;
};

}  // namespace

const std::string& host_target_id() {
  static const std::string id = [] {
    std::string s = host_cpu_name() + ";";
    bool first = true;
    for (const std::string& f : host_cpu_features()) {
      s += (first ? "+" : ",+") + f;
      first = false;
    }
    return s + ";llvm " + llvm_version();
  }();
  return id;
}

std::string compile_to_object(const Kernel& k, const std::string& symbol) {
  Built b = build(k, symbol, true);
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager pm;
  if (b.tm->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile))
    fail("LLVM cannot emit object files for this target");
  pm.run(*b.module);
  return std::string(buffer.begin(), buffer.end());
}

std::shared_ptr<const CompiledKernel> load_object(const std::string& object,
                                                  const std::string& symbol) {
  llvm::orc::LLJIT& jit = the_jit();
  static std::atomic<uint64_t> counter{0};
  auto jd = jit.createJITDylib("kiln.kernel." + std::to_string(counter++) + "." + symbol);
  if (!jd) fail("loading kernel " + symbol + ": " + message(jd.takeError()));
  // Runtime symbols first, then whatever LLJIT links every JITDylib against.
  llvm::orc::JITDylibSearchOrder order = {
      {&*jd, llvm::orc::JITDylibLookupFlags::MatchAllSymbols},
      {&jit.getMainJITDylib(), llvm::orc::JITDylibLookupFlags::MatchExportedSymbolsOnly}};
  for (const auto& link : jit.defaultLinkOrder()) order.push_back(link);
  jd->setLinkOrder(std::move(order), /*LinkAgainstThisJITDylibFirst=*/false);

  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(object, symbol);
  std::string error;
  if (llvm::Error e = jit.addObjectFile(*jd, std::move(buffer))) {
    error = message(std::move(e));
  } else {
    auto address = jit.lookup(*jd, symbol);
    if (address) {
      return std::make_shared<OrcKernel>(*jd, address->toPtr<KernelFn>(), symbol, object.size());
    }
    error = message(address.takeError());
  }
  OrcKernel::remove(jit, *jd, symbol);
  fail("cannot load the object of kernel " + symbol + ": " + error);
}

std::string emit_llvm_ir(const Kernel& k, const std::string& symbol, bool optimized) {
  Built b = build(k, symbol, optimized);
  std::string text;
  llvm::raw_string_ostream os(text);
  b.module->print(os, nullptr);
  return os.str();
}

}  // namespace kiln::jit
