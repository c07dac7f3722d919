// Kernel IR -> LLVM IR (see codegen.h).
//
// One Generator walks the kernel's statements with an IRBuilder. Values are `Val`s: uniform (one
// scalar), affine (i64 only: lane i holds s + i * step, which is how a widened loop variable and
// the indices derived from it stay recognizable as contiguous) or varying (one vector lane per
// iteration). Outside a widened loop every Val is uniform and the code is plain scalar IR; inside
// one (lanes_ > 0), an operation on uniform operands stays scalar and anything else is computed on
// vectors. A mask (lanes still active under a data-dependent `if`, or of the last, partial
// iteration) guards every memory access while widened.
#include "jit/codegen.h"

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "jit/codegen_math.h"
#include "jit/host_target.h"
#include "jit/widening.h"
#include "kiln/error.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Metadata.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Support/raw_ostream.h"

namespace kiln::jit {

CodegenTarget CodegenTarget::host() {
  static const CodegenTarget host = [] {
    CodegenTarget t;
    t.cpu = host_cpu_name();
    t.features = host_feature_string();
    t.vector_bits = host_vector_lanes_f32() * 32;
    // 512-bit vectors for LLVM's own vectorizers where AVX-512 is present (the explicitly widened
    // loops use them either way).
    t.prefer_vector_width = t.vector_bits >= 512 ? 512 : 0;
    return t;
  }();
  return host;
}

namespace {

using llvm::Type;
using llvm::Value;

[[noreturn]] void fail(const std::string& msg) {
  throw Error(ErrorCode::kInternal, "codegen: " + msg);
}

/// Work per task that makes a parallel chunk worth its scheduling cost (scalar ops).
constexpr int64_t kParallelTaskOps = 16384;
/// Estimated ops of a loop whose extent depends on loop variables (unknown up front).
constexpr int64_t kUnknownExtent = 16;

struct Val {
  Value* s = nullptr;     // the uniform value, or lane 0 of an affine one
  Value* step = nullptr;  // affine (i64): lane i holds s + i * step
  Value* vec = nullptr;   // varying
  bool uniform() const { return !vec && !step; }
};

struct Binding {
  std::string name;
  Val val;
};

class Generator {
 public:
  Generator(const Kernel& k, const std::string& symbol, llvm::LLVMContext& ctx,
            const CodegenTarget& target)
      : k_(k), symbol_(symbol), ctx_(ctx), target_(target), b_(ctx) {
    llvm::FastMathFlags fmf;
    fmf.setAllowReassoc();
    fmf.setAllowContract(true);
    b_.setFastMathFlags(fmf);
  }

  std::unique_ptr<llvm::Module> run() {
    module_ = std::make_unique<llvm::Module>(symbol_, ctx_);
    make_function(symbol_, /*external=*/true, 0, [&](llvm::ArrayRef<Value*>) { stmt(k_.body); });
    std::string err;
    llvm::raw_string_ostream os(err);
    if (llvm::verifyModule(*module_, &os))
      fail("generated invalid IR for kernel '" + k_.label + "': " + os.str());
    return std::move(module_);
  }

 private:
  // ---- types and constants ----

  Type* scalar_type(ScalarType t) {
    switch (t) {
      case ScalarType::kBool:
        return b_.getInt1Ty();
      case ScalarType::kI8:
      case ScalarType::kU8:
        return b_.getInt8Ty();
      case ScalarType::kI16:
      case ScalarType::kU16:
        return b_.getInt16Ty();
      case ScalarType::kI32:
      case ScalarType::kU32:
        return b_.getInt32Ty();
      case ScalarType::kI64:
      case ScalarType::kU64:
        return b_.getInt64Ty();
      case ScalarType::kF32:
        return b_.getFloatTy();
      case ScalarType::kF64:
        return b_.getDoubleTy();
    }
    fail("bad scalar type");
  }
  /// In memory a bool is one byte.
  Type* memory_type(ScalarType t) {
    return t == ScalarType::kBool ? b_.getInt8Ty() : scalar_type(t);
  }
  Type* vector_of(Type* t) { return llvm::FixedVectorType::get(t, unsigned(lanes_)); }
  Value* i64(int64_t v) { return b_.getInt64(uint64_t(v)); }
  static bool is_const(Value* v, int64_t c) {
    auto* ci = llvm::dyn_cast<llvm::ConstantInt>(v);
    return ci && ci->getSExtValue() == c;
  }

  // ---- functions ----

  void set_attributes(llvm::Function* f) {
    f->addFnAttr("target-cpu", target_.cpu);
    f->addFnAttr("target-features", target_.features);
    // Vectors as wide as the host's registers are legal types: the explicitly widened loops must
    // not be split into halves on CPUs whose default preference is 256 bits.
    f->addFnAttr("min-legal-vector-width", std::to_string(target_.vector_bits));
    if (target_.prefer_vector_width > 0)
      f->addFnAttr("prefer-vector-width", std::to_string(target_.prefer_vector_width));
    f->addFnAttr("no-trapping-math", "true");
    f->setDoesNotThrow();
  }

  /// Creates `name(void* const* buffers, const int64_t* params, i64 extra...)` and its inlined twin
  /// taking every buffer as a noalias pointer and every param as a value; `body` emits the twin's
  /// code (with the extra arguments).
  llvm::Function* make_function(const std::string& name, bool external, int extra,
                                const std::function<void(llvm::ArrayRef<Value*>)>& body) {
    // Save the state of the function being emitted (an outlined parallel body is made in the middle
    // of its parent).
    auto saved_ip = b_.saveIP();
    auto saved_bufs = std::move(bufs_);
    auto saved_params = std::move(params_);
    auto saved_scope = std::move(scope_);
    Value *saved_bufarr = bufarr_, *saved_paramarr = paramarr_;
    llvm::Function* saved_fn = fn_;

    Type* ptr = b_.getPtrTy();
    Type* i64t = b_.getInt64Ty();
    std::vector<Type*> outer_args = {ptr, ptr};
    for (int i = 0; i < extra; ++i) outer_args.push_back(i64t);
    auto* outer = llvm::Function::Create(
        llvm::FunctionType::get(b_.getVoidTy(), outer_args, false),
        external ? llvm::Function::ExternalLinkage : llvm::Function::InternalLinkage, name,
        module_.get());
    set_attributes(outer);

    const int nb = int(k_.buffers.size());
    std::vector<Type*> inner_args = {ptr, ptr};
    for (int i = 0; i < nb; ++i) inner_args.push_back(ptr);
    for (int i = 0; i < k_.num_params; ++i) inner_args.push_back(i64t);
    for (int i = 0; i < extra; ++i) inner_args.push_back(i64t);
    auto* inner =
        llvm::Function::Create(llvm::FunctionType::get(b_.getVoidTy(), inner_args, false),
                               llvm::Function::InternalLinkage, name + ".impl", module_.get());
    set_attributes(inner);
    inner->addFnAttr(llvm::Attribute::AlwaysInline);
    for (int i = 0; i < nb; ++i) {
      unsigned a = unsigned(2 + i);
      inner->addParamAttr(a, llvm::Attribute::NoAlias);
      inner->addParamAttr(a, llvm::Attribute::NonNull);
      int align = k_.buffers[size_t(i)].align;
      if (align > 1 && (align & (align - 1)) == 0)
        inner->addParamAttr(a, llvm::Attribute::getWithAlignment(ctx_, llvm::Align(align)));
    }

    // The outer function: load the pointers and params, call the twin.
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", outer));
    std::vector<Value*> call_args = {outer->getArg(0), outer->getArg(1)};
    for (int i = 0; i < nb; ++i) {
      Value* p = b_.CreateInBoundsGEP(ptr, outer->getArg(0), i64(i));
      call_args.push_back(b_.CreateAlignedLoad(ptr, p, llvm::Align(8)));
    }
    for (int i = 0; i < k_.num_params; ++i) {
      Value* p = b_.CreateInBoundsGEP(i64t, outer->getArg(1), i64(i));
      call_args.push_back(b_.CreateAlignedLoad(i64t, p, llvm::Align(8)));
    }
    for (int i = 0; i < extra; ++i) call_args.push_back(outer->getArg(unsigned(2 + i)));
    b_.CreateCall(inner, call_args);
    b_.CreateRetVoid();

    // The twin: the kernel code.
    fn_ = inner;
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", inner));
    bufarr_ = inner->getArg(0);
    paramarr_ = inner->getArg(1);
    bufs_.clear();
    params_.clear();
    scope_.clear();
    for (int i = 0; i < nb; ++i) bufs_.push_back(inner->getArg(unsigned(2 + i)));
    for (int i = 0; i < k_.num_params; ++i) params_.push_back(inner->getArg(unsigned(2 + nb + i)));
    std::vector<Value*> extra_args;
    for (int i = 0; i < extra; ++i)
      extra_args.push_back(inner->getArg(unsigned(2 + nb + k_.num_params + i)));
    body(extra_args);
    b_.CreateRetVoid();

    bufs_ = std::move(saved_bufs);
    params_ = std::move(saved_params);
    scope_ = std::move(saved_scope);
    bufarr_ = saved_bufarr;
    paramarr_ = saved_paramarr;
    fn_ = saved_fn;
    b_.restoreIP(saved_ip);
    return outer;
  }

  llvm::AllocaInst* entry_alloca(Type* t) {
    llvm::BasicBlock& entry = fn_->getEntryBlock();
    llvm::IRBuilder<> tmp(&entry, entry.begin());
    return tmp.CreateAlloca(t);
  }

  // ---- loops ----

  llvm::MDNode* loop_metadata(const std::vector<std::pair<const char*, Value*>>& props) {
    if (props.empty()) return nullptr;
    auto tmp = llvm::MDNode::getTemporary(ctx_, {});
    std::vector<llvm::Metadata*> ops = {tmp.get()};
    for (const auto& [name, v] : props) {
      std::vector<llvm::Metadata*> p = {llvm::MDString::get(ctx_, name)};
      if (v) p.push_back(llvm::ConstantAsMetadata::get(llvm::cast<llvm::Constant>(v)));
      ops.push_back(llvm::MDNode::get(ctx_, p));
    }
    llvm::MDNode* md = llvm::MDNode::getDistinct(ctx_, ops);
    md->replaceOperandWith(0, md);
    return md;
  }

  /// for (i = begin; i < end; i += step) body(i), in rotated form, `md` on the back edge.
  void loop(Value* begin, Value* end, int64_t step, llvm::MDNode* md,
            const std::function<void(Value*)>& body) {
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* head = llvm::BasicBlock::Create(ctx_, "loop", fn_);
    auto* exit = llvm::BasicBlock::Create(ctx_, "loop.end", fn_);
    b_.CreateCondBr(b_.CreateICmpSLT(begin, end), head, exit);
    b_.SetInsertPoint(head);
    llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2);
    i->addIncoming(begin, pre);
    body(i);
    Value* next = b_.CreateAdd(i, i64(step), "", /*HasNUW=*/false, /*HasNSW=*/true);
    i->addIncoming(next, b_.GetInsertBlock());
    auto* br = b_.CreateCondBr(b_.CreateICmpSLT(next, end), head, exit);
    if (md) br->setMetadata(llvm::LLVMContext::MD_loop, md);
    b_.SetInsertPoint(exit);
  }

  void for_stmt(const StmtNode& s) {
    Val ext = expr(s.extent);
    if (!ext.uniform()) fail("loop '" + s.var + "': extent varies across vector lanes");
    if (s.loop == LoopKind::kParallel && lanes_ == 0) return parallel_for(s, ext.s);
    llvm::MDNode* md = nullptr;
    if (s.loop == LoopKind::kVectorized && lanes_ == 0 && s.factor != 1) {
      const Widening w = check_widening(s.var, s.body[0]);
      int lanes =
          int(s.factor > 0 ? s.factor : std::clamp(target_.vector_bits / w.max_bits, 2, 64));
      if (w.ok) return widened_for(s, ext.s, lanes);
      md = loop_metadata({{"llvm.loop.vectorize.enable", b_.getTrue()},
                          {"llvm.loop.vectorize.width", b_.getInt32(uint32_t(lanes))}});
    } else if (s.loop == LoopKind::kUnrolled) {
      md = s.factor > 1
               ? loop_metadata({{"llvm.loop.unroll.count", b_.getInt32(uint32_t(s.factor))}})
               : loop_metadata({{"llvm.loop.unroll.enable", nullptr}});
    }
    loop(i64(0), ext.s, 1, md, [&](Value* i) {
      scope_.push_back({s.var, Val{i}});
      stmt(s.body[0]);
      scope_.pop_back();
    });
  }

  /// The loop as vector code of `lanes` lanes: full vectors, then one masked partial vector.
  void widened_for(const StmtNode& s, Value* extent, int lanes) {
    Value* ext = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, extent, i64(0));
    Value* full = b_.CreateSub(ext, b_.CreateSRem(ext, i64(lanes)));
    lanes_ = lanes;
    // The vectorizer must not touch the result again.
    llvm::MDNode* md = loop_metadata({{"llvm.loop.isvectorized", b_.getInt32(1)}});
    loop(i64(0), full, lanes, md, [&](Value* i) {
      scope_.push_back({s.var, Val{i, i64(1)}});
      stmt(s.body[0]);
      scope_.pop_back();
    });
    auto* tail = llvm::BasicBlock::Create(ctx_, "tail", fn_);
    auto* done = llvm::BasicBlock::Create(ctx_, "tail.end", fn_);
    b_.CreateCondBr(b_.CreateICmpSLT(full, ext), tail, done);
    b_.SetInsertPoint(tail);
    mask_ = b_.CreateIntrinsic(llvm::Intrinsic::get_active_lane_mask,
                               {vector_of(b_.getInt1Ty()), b_.getInt64Ty()}, {full, ext});
    mask_nonempty_ = true;
    scope_.push_back({s.var, Val{full, i64(1)}});
    stmt(s.body[0]);
    scope_.pop_back();
    mask_ = nullptr;
    mask_nonempty_ = false;
    lanes_ = 0;
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
  }

  /// Estimated scalar ops of one execution of `s`, as a runtime value in [1, 2^20] (loop extents
  /// over params are known at run time; those over loop variables are guessed).
  Value* cost(const Stmt& s) {
    const int64_t cap = int64_t(1) << 20;
    auto clampv = [&](Value* v) {
      return b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin,
                                      b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, v, i64(1)),
                                      i64(cap));
    };
    switch (s->kind) {
      case StmtKind::kFor: {
        Value* ext = uses_vars(s->extent) ? i64(kUnknownExtent) : clampv(expr(s->extent).s);
        return clampv(b_.CreateMul(ext, cost(s->body[0])));
      }
      case StmtKind::kStore:
        return clampv(b_.CreateAdd(expr_cost(s->value), i64(1)));
      case StmtKind::kLet:
        return clampv(b_.CreateAdd(expr_cost(s->value), cost(s->body[0])));
      case StmtKind::kBlock:
      case StmtKind::kIf: {
        Value* c = i64(1);
        for (const Stmt& b : s->body) c = clampv(b_.CreateAdd(c, cost(b)));
        return c;
      }
    }
    return i64(1);
  }
  Value* expr_cost(const Expr& e) {
    const int64_t cap = int64_t(1) << 20;
    int64_t own = 1;
    if (e->kind == ExprKind::kUnary && UnaryOp(e->op) >= UnaryOp::kExp) own = 20;
    if (e->kind == ExprKind::kBinary && BinaryOp(e->op) == BinaryOp::kPow) own = 40;
    if (e->kind == ExprKind::kReduce) {
      Value* n = i64(1);
      for (const Expr& x : e->reduce_extents) {
        Value* xv = uses_vars(x) ? i64(kUnknownExtent) : expr(x).s;
        xv = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, xv, i64(1));
        n = b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, b_.CreateMul(n, xv), i64(cap));
      }
      return b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, b_.CreateMul(n, expr_cost(e->args[1])),
                                      i64(cap));
    }
    Value* c = i64(own);
    for (const Expr& a : e->args)
      c = b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, b_.CreateAdd(c, expr_cost(a)), i64(cap));
    return c;
  }
  /// Whether `e` cannot be evaluated before the loop (it reads loop variables or memory).
  static bool uses_vars(const Expr& e) {
    if (e->kind == ExprKind::kVar || e->kind == ExprKind::kReduce || e->kind == ExprKind::kLoad)
      return true;
    for (const Expr& a : e->args)
      if (uses_vars(a)) return true;
    return false;
  }

  void parallel_for(const StmtNode& s, Value* extent) {
    Value* grain = s.factor > 0
                       ? i64(s.factor)
                       : b_.CreateBinaryIntrinsic(
                             llvm::Intrinsic::smax,
                             b_.CreateUDiv(i64(kParallelTaskOps), cost(s.body[0])), i64(1));
    std::string name = symbol_ + ".par" + std::to_string(parallel_count_++);
    llvm::Function* body = make_function(name, false, 2, [&](llvm::ArrayRef<Value*> range) {
      loop(range[0], range[1], 1, nullptr, [&](Value* i) {
        scope_.push_back({s.var, Val{i}});
        stmt(s.body[0]);
        scope_.pop_back();
      });
    });
    Type* ptr = b_.getPtrTy();
    Type* i64t = b_.getInt64Ty();
    llvm::FunctionCallee pf = module_->getOrInsertFunction(
        "kiln_parallel_for",
        llvm::FunctionType::get(b_.getVoidTy(), {ptr, ptr, ptr, i64t, i64t}, false));
    if (auto* f = llvm::dyn_cast<llvm::Function>(pf.getCallee())) f->setDoesNotThrow();
    b_.CreateCall(pf, {body, bufarr_, paramarr_, extent, grain});
  }

  // ---- statements ----

  void stmt(const Stmt& s) {
    if (!s) return;
    switch (s->kind) {
      case StmtKind::kFor:
        return for_stmt(*s);
      case StmtKind::kStore:
        return store(*s);
      case StmtKind::kLet:
        scope_.push_back({s->var, expr(s->value)});
        stmt(s->body[0]);
        scope_.pop_back();
        return;
      case StmtKind::kBlock:
        for (const Stmt& c : s->body) stmt(c);
        return;
      case StmtKind::kIf:
        return if_stmt(*s);
    }
  }

  void if_stmt(const StmtNode& s) {
    Val c = expr(s.value);
    const Stmt& then_s = s.body[0];
    const Stmt else_s = s.body.size() > 1 ? s.body[1] : nullptr;
    if (c.uniform()) {
      auto* then_bb = llvm::BasicBlock::Create(ctx_, "then", fn_);
      auto* else_bb = else_s ? llvm::BasicBlock::Create(ctx_, "else", fn_) : nullptr;
      auto* done = llvm::BasicBlock::Create(ctx_, "endif", fn_);
      b_.CreateCondBr(c.s, then_bb, else_bb ? else_bb : done);
      b_.SetInsertPoint(then_bb);
      stmt(then_s);
      b_.CreateBr(done);
      if (else_bb) {
        b_.SetInsertPoint(else_bb);
        stmt(else_s);
        b_.CreateBr(done);
      }
      b_.SetInsertPoint(done);
      return;
    }
    // A per-lane condition: both branches run, each under its part of the mask.
    Value* cv = c.vec ? c.vec : vec(c);
    Value* saved = mask_;
    bool saved_nonempty = mask_nonempty_;
    mask_nonempty_ = false;
    mask_ = saved ? b_.CreateAnd(saved, cv) : cv;
    stmt(then_s);
    if (else_s) {
      Value* nc = b_.CreateNot(cv);
      mask_ = saved ? b_.CreateAnd(saved, nc) : nc;
      stmt(else_s);
    }
    mask_ = saved;
    mask_nonempty_ = saved_nonempty;
  }

  /// Element offset of an access (sum of index * stride), as an i64 Val.
  Val offset(int buffer, const std::vector<Expr>& indices) {
    const BufferDecl& d = k_.buffers[size_t(buffer)];
    Val off{i64(0)};
    for (size_t i = 0; i < indices.size(); ++i) {
      if (indices[i]->is_int_imm(0)) continue;
      Val term = binary_val(BinaryOp::kMul, ScalarType::kI64, expr(indices[i]), expr(d.strides[i]));
      off = binary_val(BinaryOp::kAdd, ScalarType::kI64, off, term);
    }
    return off;
  }

  Value* all_true() { return llvm::Constant::getAllOnesValue(vector_of(b_.getInt1Ty())); }

  void store(const StmtNode& s) {
    const BufferDecl& d = k_.buffers[size_t(s.buffer)];
    Val v = expr(s.value);
    Val off = offset(s.buffer, s.indices);
    Type* mt = memory_type(d.type);
    const llvm::Align align(size_t(type_bytes(d.type)));
    Value* base = bufs_[size_t(s.buffer)];
    if (lanes_ == 0 || (off.uniform() && v.uniform() && !mask_)) {
      Value* x = v.s;
      if (d.type == ScalarType::kBool) x = b_.CreateZExt(x, mt);
      b_.CreateAlignedStore(x, b_.CreateInBoundsGEP(mt, base, off.s), align);
      return;
    }
    Value* x = vec(v);
    if (d.type == ScalarType::kBool) x = b_.CreateZExt(x, vector_of(mt));
    if (off.step && is_const(off.step, 1)) {
      Value* p = b_.CreateInBoundsGEP(mt, base, off.s);
      if (mask_)
        b_.CreateMaskedStore(x, p, align, mask_);
      else
        b_.CreateAlignedStore(x, p, align);
      return;
    }
    // Scattered (or every lane to one element: lanes store in order, the last one wins, as the
    // serial loop would).
    Value* ptrs = b_.CreateGEP(mt, base, vec(off));
    b_.CreateMaskedScatter(x, ptrs, align, mask_ ? mask_ : all_true());
  }

  Val load(const ExprNode& e) {
    const BufferDecl& d = k_.buffers[size_t(e.ival)];
    Val off = offset(int(e.ival), e.args);
    Type* mt = memory_type(d.type);
    const llvm::Align align(size_t(type_bytes(d.type)));
    Value* base = bufs_[size_t(e.ival)];
    auto to_value = [&](Value* m) {
      return d.type == ScalarType::kBool
                 ? b_.CreateICmpNE(m, llvm::Constant::getNullValue(m->getType()))
                 : m;
    };
    if (off.uniform() && (!mask_ || mask_nonempty_)) {
      // Some lane performs this load, so the serial loop would too: in bounds.
      return Val{to_value(b_.CreateAlignedLoad(mt, b_.CreateInBoundsGEP(mt, base, off.s), align))};
    }
    Type* vt = vector_of(mt);
    // Masked-off lanes read zeros, never poison (a zero divisor is harmless, poison is not).
    Value* zero = llvm::Constant::getNullValue(vt);
    if (off.step && is_const(off.step, 1)) {
      Value* p = b_.CreateInBoundsGEP(mt, base, off.s);
      Value* x = mask_ ? static_cast<Value*>(b_.CreateMaskedLoad(vt, p, align, mask_, zero))
                       : b_.CreateAlignedLoad(vt, p, align);
      return Val{nullptr, nullptr, to_value(x)};
    }
    Value* ptrs = b_.CreateGEP(mt, base, vec(off));
    Value* x = b_.CreateMaskedGather(vt, ptrs, align, mask_ ? mask_ : all_true(), zero);
    return Val{nullptr, nullptr, to_value(x)};
  }

  // ---- expressions ----

  /// The value on every lane, as a vector.
  Value* vec(const Val& v) {
    if (v.vec) return v.vec;
    if (lanes_ == 0) fail("vector value outside a widened loop");
    Value* splat = b_.CreateVectorSplat(unsigned(lanes_), v.s);
    if (!v.step) return splat;
    Value* iota = b_.CreateStepVector(vector_of(b_.getInt64Ty()));
    return b_.CreateAdd(splat, b_.CreateMul(b_.CreateVectorSplat(unsigned(lanes_), v.step), iota));
  }

  Val expr(const Expr& e) {
    switch (e->kind) {
      case ExprKind::kIntImm:
        return Val{llvm::ConstantInt::get(scalar_type(e->type), uint64_t(e->ival))};
      case ExprKind::kFloatImm:
        return Val{llvm::ConstantFP::get(scalar_type(e->type), e->fval)};
      case ExprKind::kVar:
        for (auto it = scope_.rbegin(); it != scope_.rend(); ++it)
          if (it->name == e->name) return it->val;
        fail("variable '" + e->name + "' is not bound");
      case ExprKind::kParam:
        if (e->ival < 0 || e->ival >= int64_t(params_.size()))
          fail("param " + std::to_string(e->ival) + " out of range");
        return Val{params_[size_t(e->ival)]};
      case ExprKind::kUnary: {
        Val a = expr(e->args[0]);
        if (a.uniform()) return Val{unary(UnaryOp(e->op), e->type, a.s)};
        return Val{nullptr, nullptr, unary(UnaryOp(e->op), e->type, vec(a))};
      }
      case ExprKind::kBinary:
        return binary_val(BinaryOp(e->op), e->args[0]->type, expr(e->args[0]), expr(e->args[1]));
      case ExprKind::kCast: {
        Val a = expr(e->args[0]);
        if (a.uniform()) return Val{cast(e->type, e->args[0]->type, a.s)};
        return Val{nullptr, nullptr, cast(e->type, e->args[0]->type, vec(a))};
      }
      case ExprKind::kSelect: {
        Val c = expr(e->args[0]), t = expr(e->args[1]), f = expr(e->args[2]);
        if (c.uniform() && t.uniform() && f.uniform()) return Val{b_.CreateSelect(c.s, t.s, f.s)};
        return Val{nullptr, nullptr, b_.CreateSelect(c.uniform() ? c.s : vec(c), vec(t), vec(f))};
      }
      case ExprKind::kLoad:
        return load(*e);
      case ExprKind::kReduce:
        return reduce(*e);
    }
    fail("bad expression kind");
  }

  /// Binary op on Vals; i64 add, sub and multiply by a uniform keep affine values affine.
  Val binary_val(BinaryOp op, ScalarType t, const Val& a, const Val& b) {
    if (a.uniform() && b.uniform()) return Val{binary(op, t, a.s, b.s)};
    if (t == ScalarType::kI64 && !a.vec && !b.vec) {
      auto sum = [&](Value* x, Value* y, bool sub) -> Value* {
        if (!x && !y) return nullptr;
        if (!y) return x;
        if (!x) return sub ? b_.CreateNeg(y) : y;
        return sub ? b_.CreateSub(x, y) : b_.CreateAdd(x, y);
      };
      if (op == BinaryOp::kAdd || op == BinaryOp::kSub) {
        bool sub = op == BinaryOp::kSub;
        return Val{sum(a.s, b.s, sub), sum(a.step, b.step, sub)};
      }
      if (op == BinaryOp::kMul && (a.uniform() || b.uniform())) {
        const Val& u = a.uniform() ? a : b;
        const Val& f = a.uniform() ? b : a;
        return Val{b_.CreateMul(f.s, u.s), b_.CreateMul(f.step, u.s)};
      }
    }
    return Val{nullptr, nullptr, binary(op, t, vec(a), vec(b))};
  }

  Val reduce(const ExprNode& e) {
    const ReduceOp op = ReduceOp(e.op);
    const ScalarType t = e.type;
    Val init = expr(e.args[0]);
    // Is the accumulator per lane? (The reduce variables are uniform.)
    bool varying = !init.uniform();
    if (lanes_ > 0 && !varying) {
      WidenProbe probe(scope_);
      for (const auto& v : e.reduce_vars) probe.bind(v, false);
      varying = probe.varies(e.args[1]);
    }
    Type* acc_t = varying ? vector_of(scalar_type(t)) : scalar_type(t);
    llvm::AllocaInst* acc = entry_alloca(acc_t);
    b_.CreateStore(varying ? vec(init) : init.s, acc);
    BinaryOp comb = op == ReduceOp::kSum    ? BinaryOp::kAdd
                    : op == ReduceOp::kProd ? BinaryOp::kMul
                    : op == ReduceOp::kMin  ? BinaryOp::kMin
                                            : BinaryOp::kMax;
    std::function<void(size_t)> nest = [&](size_t d) {
      if (d == e.reduce_vars.size()) {
        Val v = expr(e.args[1]);
        Value* cur = b_.CreateLoad(acc_t, acc);
        Value* x = varying ? vec(v) : v.s;
        if (!varying && !v.uniform()) fail("reduce value varies but its accumulator does not");
        b_.CreateStore(binary(comb, t, cur, x), acc);
        return;
      }
      Val ext = expr(e.reduce_extents[d]);
      if (!ext.uniform()) fail("reduce extent varies across vector lanes");
      loop(i64(0), ext.s, 1, nullptr, [&](Value* i) {
        scope_.push_back({e.reduce_vars[d], Val{i}});
        nest(d + 1);
        scope_.pop_back();
      });
    };
    nest(0);
    Value* r = b_.CreateLoad(acc_t, acc);
    return varying ? Val{nullptr, nullptr, r} : Val{r};
  }

  /// Whether an expression varies across lanes given the current bindings.
  class WidenProbe {
   public:
    explicit WidenProbe(const std::vector<Binding>& scope) : scope_(scope) {}
    void bind(const std::string& name, bool varies) { extra_.push_back({name, varies}); }
    bool varies(const Expr& e) {
      if (e->kind == ExprKind::kVar) {
        for (auto it = extra_.rbegin(); it != extra_.rend(); ++it)
          if (it->first == e->name) return it->second;
        for (auto it = scope_.rbegin(); it != scope_.rend(); ++it)
          if (it->name == e->name) return !it->val.uniform();
        return false;
      }
      if (e->kind == ExprKind::kReduce) {
        if (varies(e->args[0])) return true;
        for (const auto& v : e->reduce_vars) bind(v, false);
        bool r = varies(e->args[1]);
        extra_.resize(extra_.size() - e->reduce_vars.size());
        return r;
      }
      for (const Expr& a : e->args)
        if (varies(a)) return true;
      return false;
    }

   private:
    const std::vector<Binding>& scope_;
    std::vector<std::pair<std::string, bool>> extra_;
  };

  Value* unary(UnaryOp op, ScalarType t, Value* a) {
    if (is_float(t)) {
      switch (op) {
        case UnaryOp::kNeg:
          return b_.CreateFNeg(a);
        case UnaryOp::kAbs:
          return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, a);
        case UnaryOp::kFloor:
          return b_.CreateUnaryIntrinsic(llvm::Intrinsic::floor, a);
        case UnaryOp::kCeil:
          return b_.CreateUnaryIntrinsic(llvm::Intrinsic::ceil, a);
        case UnaryOp::kRound:
          return b_.CreateUnaryIntrinsic(llvm::Intrinsic::roundeven, a);
        case UnaryOp::kSqrt:
          return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, a);
        case UnaryOp::kNot:
          break;
        default:
          if (Value* r = emit_math_unary(b_, op, a)) return r;
          break;
      }
      fail(std::string("unary ") + unary_name(op) + " on " + type_name(t));
    }
    switch (op) {
      case UnaryOp::kNeg:
        return b_.CreateNeg(a);
      case UnaryOp::kNot:
        return b_.CreateNot(a);
      case UnaryOp::kAbs:
        if (!is_signed_int(t)) return a;
        return b_.CreateBinaryIntrinsic(llvm::Intrinsic::abs, a, b_.getFalse());
      default:
        fail(std::string("unary ") + unary_name(op) + " on " + type_name(t));
    }
  }

  Value* binary(BinaryOp op, ScalarType t, Value* a, Value* b) {
    if (is_float(t)) {
      switch (op) {
        case BinaryOp::kAdd:
          return b_.CreateFAdd(a, b);
        case BinaryOp::kSub:
          return b_.CreateFSub(a, b);
        case BinaryOp::kMul:
          return b_.CreateFMul(a, b);
        case BinaryOp::kDiv:
          return b_.CreateFDiv(a, b);
        case BinaryOp::kMod: {
          // C fmod, exactly: no fast-math flags.
          llvm::IRBuilderBase::FastMathFlagGuard guard(b_);
          b_.clearFastMathFlags();
          return b_.CreateFRem(a, b);
        }
        case BinaryOp::kMin:
          return b_.CreateBinaryIntrinsic(llvm::Intrinsic::minimum, a, b);
        case BinaryOp::kMax:
          return b_.CreateBinaryIntrinsic(llvm::Intrinsic::maximum, a, b);
        case BinaryOp::kPow:
          return emit_math_pow(b_, a, b);
        case BinaryOp::kEq:
          return b_.CreateFCmpOEQ(a, b);
        case BinaryOp::kNe:
          return b_.CreateFCmpUNE(a, b);
        case BinaryOp::kLt:
          return b_.CreateFCmpOLT(a, b);
        case BinaryOp::kLe:
          return b_.CreateFCmpOLE(a, b);
        case BinaryOp::kGt:
          return b_.CreateFCmpOGT(a, b);
        case BinaryOp::kGe:
          return b_.CreateFCmpOGE(a, b);
        default:
          fail(std::string("binary ") + binary_name(op) + " on " + type_name(t));
      }
    }
    const bool sgn = is_signed_int(t);
    Type* ty = a->getType();
    auto zero = [&] { return llvm::Constant::getNullValue(ty); };
    auto cst = [&](int64_t v) { return llvm::ConstantInt::get(ty, uint64_t(v), true); };
    switch (op) {
      case BinaryOp::kAdd:
        return b_.CreateAdd(a, b);
      case BinaryOp::kSub:
        return b_.CreateSub(a, b);
      case BinaryOp::kMul:
        return b_.CreateMul(a, b);
      case BinaryOp::kDiv:
      case BinaryOp::kMod: {
        // Never trap: a zero divisor gives 0 and x / -1 is computed as -x (INT_MIN / -1 wraps,
        // INT_MIN % -1 is 0).
        const bool div = op == BinaryOp::kDiv;
        Value* is_zero = b_.CreateICmpEQ(b, zero());
        if (!sgn) {
          Value* safe = b_.CreateSelect(is_zero, cst(1), b);
          Value* q = div ? b_.CreateUDiv(a, safe) : b_.CreateURem(a, safe);
          return b_.CreateSelect(is_zero, zero(), q);
        }
        Value* is_m1 = b_.CreateICmpEQ(b, cst(-1));
        Value* safe = b_.CreateSelect(b_.CreateOr(is_zero, is_m1), cst(1), b);
        Value* q = div ? b_.CreateSDiv(a, safe) : b_.CreateSRem(a, safe);
        Value* m1 = div ? b_.CreateNeg(a) : zero();
        return b_.CreateSelect(is_zero, zero(), b_.CreateSelect(is_m1, m1, q));
      }
      case BinaryOp::kMin:
        return b_.CreateBinaryIntrinsic(sgn ? llvm::Intrinsic::smin : llvm::Intrinsic::umin, a, b);
      case BinaryOp::kMax:
        return b_.CreateBinaryIntrinsic(sgn ? llvm::Intrinsic::smax : llvm::Intrinsic::umax, a, b);
      case BinaryOp::kAnd:
        return b_.CreateAnd(a, b);
      case BinaryOp::kOr:
        return b_.CreateOr(a, b);
      case BinaryOp::kXor:
        return b_.CreateXor(a, b);
      case BinaryOp::kShl:
      case BinaryOp::kShr: {
        Value* n = b_.CreateAnd(b, cst(int64_t(ty->getScalarSizeInBits()) - 1));
        if (op == BinaryOp::kShl) return b_.CreateShl(a, n);
        return sgn ? b_.CreateAShr(a, n) : b_.CreateLShr(a, n);
      }
      case BinaryOp::kEq:
        return b_.CreateICmpEQ(a, b);
      case BinaryOp::kNe:
        return b_.CreateICmpNE(a, b);
      case BinaryOp::kLt:
        return sgn ? b_.CreateICmpSLT(a, b) : b_.CreateICmpULT(a, b);
      case BinaryOp::kLe:
        return sgn ? b_.CreateICmpSLE(a, b) : b_.CreateICmpULE(a, b);
      case BinaryOp::kGt:
        return sgn ? b_.CreateICmpSGT(a, b) : b_.CreateICmpUGT(a, b);
      case BinaryOp::kGe:
        return sgn ? b_.CreateICmpSGE(a, b) : b_.CreateICmpUGE(a, b);
      case BinaryOp::kPow:
        break;
    }
    fail(std::string("binary ") + binary_name(op) + " on " + type_name(t));
  }

  /// Cast of a scalar or vector `a` of type `from` to `to`.
  Value* cast(ScalarType to, ScalarType from, Value* a) {
    if (to == from) return a;
    Type* st = scalar_type(to);
    Type* dst = a->getType()->isVectorTy() ? vector_of(st) : st;
    if (to == ScalarType::kBool) {
      Value* zero = llvm::Constant::getNullValue(a->getType());
      return is_float(from) ? b_.CreateFCmpUNE(a, zero) : b_.CreateICmpNE(a, zero);
    }
    if (from == ScalarType::kBool)
      return is_float(to) ? b_.CreateUIToFP(a, dst) : b_.CreateZExt(a, dst);
    if (is_float(from) && is_float(to))
      return to == ScalarType::kF64 ? b_.CreateFPExt(a, dst) : b_.CreateFPTrunc(a, dst);
    if (is_float(to))
      return is_signed_int(from) ? b_.CreateSIToFP(a, dst) : b_.CreateUIToFP(a, dst);
    if (is_float(from)) {
      // Truncation toward zero, saturating to the i64 range (NaN -> 0) and then wrapping to the
      // target width: exactly the interpreter's choice for the unspecified out-of-range cases, and
      // never poison.
      Type* i64t = a->getType()->isVectorTy() ? vector_of(b_.getInt64Ty()) : b_.getInt64Ty();
      Value* s = b_.CreateIntrinsic(llvm::Intrinsic::fptosi_sat, {i64t, a->getType()}, {a});
      if (to == ScalarType::kU64) {
        Value* u = b_.CreateIntrinsic(llvm::Intrinsic::fptoui_sat, {i64t, a->getType()}, {a});
        Value* big =
            b_.CreateFCmpOGE(a, llvm::ConstantFP::get(a->getType(), 9223372036854775808.0));
        return b_.CreateSelect(big, u, s);
      }
      return to == ScalarType::kI64 ? s : b_.CreateTrunc(s, dst);
    }
    unsigned fb = a->getType()->getScalarSizeInBits(), tb = st->getScalarSizeInBits();
    if (tb < fb) return b_.CreateTrunc(a, dst);
    if (tb == fb) return a;
    return is_signed_int(from) ? b_.CreateSExt(a, dst) : b_.CreateZExt(a, dst);
  }

  const Kernel& k_;
  const std::string symbol_;
  llvm::LLVMContext& ctx_;
  const CodegenTarget& target_;
  llvm::IRBuilder<> b_;
  std::unique_ptr<llvm::Module> module_;

  // The function being emitted.
  llvm::Function* fn_ = nullptr;
  Value* bufarr_ = nullptr;
  Value* paramarr_ = nullptr;
  std::vector<Value*> bufs_;
  std::vector<Value*> params_;
  std::vector<Binding> scope_;
  int parallel_count_ = 0;

  // Widening state: lanes of the widened loop being emitted (0 outside one) and the mask of the
  // active lanes (null: all); mask_nonempty_ when some lane is known to be active (the tail).
  int lanes_ = 0;
  Value* mask_ = nullptr;
  bool mask_nonempty_ = false;
};

}  // namespace

std::unique_ptr<llvm::Module> generate_module(const Kernel& k, const std::string& symbol,
                                              llvm::LLVMContext& ctx, const CodegenTarget& target) {
  validate(k);
  return Generator(k, symbol, ctx, target).run();
}

}  // namespace kiln::jit
