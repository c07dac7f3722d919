// Inline polynomial math for the code generator (see codegen_math.h).
//
// Every function is written once against a type that may be a scalar or a vector: constants are
// splats, comparisons give per-lane masks and special values are patched in with selects, so there
// are no branches and the loop vectorizer (or the code generator's own widening) can handle them
// like any arithmetic. The coefficients are Cephes' (exp, log, tanh, sin, cos in f32; exp and log
// in f64) and Norbert Juffa's erff (max error below 1 ulp).
#include "jit/codegen_math.h"

#include <cmath>
#include <initializer_list>
#include <limits>

#include "llvm/IR/Constants.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/MDBuilder.h"
#include "llvm/IR/Module.h"

namespace kiln::jit {

namespace {

using llvm::Type;
using llvm::Value;

/// The type of the same shape as `ty` (scalar or vector) with element type `elem`.
Type* with_elem(Type* ty, Type* elem) {
  if (auto* vt = llvm::dyn_cast<llvm::VectorType>(ty))
    return llvm::VectorType::get(elem, vt->getElementCount());
  return elem;
}

/// Emits float code of one type (f32 or f64, scalar or vector) with contraction allowed and nothing
/// else: the Cody-Waite range reductions must not be reassociated.
class FloatEmitter {
 public:
  FloatEmitter(llvm::IRBuilderBase& b, Type* ty) : b_(b), ty_(ty), guard_(b) {
    llvm::FastMathFlags fmf;
    fmf.setAllowContract(true);
    b.setFastMathFlags(fmf);
    f64_ = ty->getScalarType()->isDoubleTy();
    ity_ = with_elem(ty, b.getIntNTy(f64_ ? 64 : 32));
  }

  Type* type() const { return ty_; }
  bool f64() const { return f64_; }

  // ---- building blocks ----
  Value* c(double v) { return llvm::ConstantFP::get(ty_, v); }
  Value* ci(int64_t v) { return llvm::ConstantInt::get(ity_, uint64_t(v), true); }
  Value* add(Value* a, Value* b) { return b_.CreateFAdd(a, b); }
  Value* sub(Value* a, Value* b) { return b_.CreateFSub(a, b); }
  Value* mul(Value* a, Value* b) { return b_.CreateFMul(a, b); }
  Value* div(Value* a, Value* b) { return b_.CreateFDiv(a, b); }
  Value* fma(Value* a, Value* b, Value* c) {
    return b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {ty_}, {a, b, c});
  }
  Value* sel(Value* cond, Value* a, Value* b) { return b_.CreateSelect(cond, a, b); }
  Value* lt(Value* a, Value* b) { return b_.CreateFCmpOLT(a, b); }
  Value* gt(Value* a, Value* b) { return b_.CreateFCmpOGT(a, b); }
  Value* eq(Value* a, Value* b) { return b_.CreateFCmpOEQ(a, b); }
  Value* is_nan(Value* a) { return b_.CreateFCmpUNO(a, a); }
  Value* fabs(Value* a) { return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, a); }
  Value* roundeven(Value* a) { return b_.CreateUnaryIntrinsic(llvm::Intrinsic::roundeven, a); }
  Value* trunc(Value* a) { return b_.CreateUnaryIntrinsic(llvm::Intrinsic::trunc, a); }
  Value* copysign(Value* mag, Value* sign) { return b_.CreateCopySign(mag, sign); }
  /// Float -> integer of the same width; never poison (the value is unspecified when out of range,
  /// which only happens for lanes whose result is overridden anyway).
  Value* to_int(Value* a) { return b_.CreateFreeze(b_.CreateFPToSI(a, ity_)); }
  Value* bits(Value* a) { return b_.CreateBitCast(a, ity_); }
  Value* from_bits(Value* i) { return b_.CreateBitCast(i, ty_); }

  /// Horner evaluation, coefficients from the highest power down.
  Value* poly(Value* x, std::initializer_list<double> coeffs) {
    auto it = coeffs.begin();
    Value* r = c(*it++);
    for (; it != coeffs.end(); ++it) r = fma(r, x, c(*it));
    return r;
  }

  /// 2^k for an integer vector k within the normal exponent range.
  Value* pow2i(Value* k) {
    const int bias = f64_ ? 1023 : 127, mant = f64_ ? 52 : 23;
    return from_bits(b_.CreateShl(b_.CreateAdd(k, ci(bias)), ci(mant)));
  }
  /// y * 2^n for n up to twice the exponent range, in two exact steps so that results in the
  /// subnormal range are rounded once and results past the range overflow to inf.
  Value* scale(Value* y, Value* n) {
    Value* n1 = b_.CreateAShr(n, ci(1));
    Value* n2 = b_.CreateSub(n, n1);
    return mul(mul(y, pow2i(n1)), pow2i(n2));
  }

  // ---- functions ----

  Value* exp(Value* x) {
    // Clamp so that 2^n stays within scale()'s range; the bounds are past overflow and underflow,
    // so the result is still inf or 0 there. NaN passes through the selects.
    const double hi = f64_ ? 710.0 : 89.0, lo = f64_ ? -746.0 : -104.0;
    x = sel(gt(x, c(hi)), c(hi), x);
    x = sel(lt(x, c(lo)), c(lo), x);
    Value* n = roundeven(mul(x, c(1.44269504088896340736)));
    if (!f64_) {
      Value* r = sub(sub(x, mul(n, c(0.693359375))), mul(n, c(-2.12194440e-4)));
      Value* z = mul(r, r);
      Value* p = poly(r, {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3, 4.1665795894E-2,
                          1.6666665459E-1, 5.0000001201E-1});
      Value* y = add(fma(p, z, r), c(1.0));
      return scale(y, to_int(n));
    }
    Value* r = sub(sub(x, mul(n, c(6.93145751953125E-1))), mul(n, c(1.42860682030941723212E-6)));
    Value* xx = mul(r, r);
    Value* px = mul(r, poly(xx, {1.26177193074810590878E-4, 3.02994407707441961300E-2,
                                 9.99999999999999999910E-1}));
    Value* q = poly(xx, {3.00198505138664455042E-6, 2.52448340349684104192E-3,
                         2.27265548208155028766E-1, 2.00000000000000000009E0});
    Value* e = div(px, sub(q, px));
    Value* y = add(c(1.0), mul(c(2.0), e));
    return scale(y, to_int(n));
  }

  Value* log(Value* x) {
    // frexp by bit manipulation; subnormals are scaled into the normal range first.
    const int mant = f64_ ? 52 : 23;
    const double min_normal =
        f64_ ? std::numeric_limits<double>::min() : double(std::numeric_limits<float>::min());
    Value* tiny = lt(x, c(min_normal));
    Value* xs = sel(tiny, mul(x, c(std::ldexp(1.0, mant))), x);
    Value* ib = bits(xs);
    Value* e = b_.CreateSub(b_.CreateLShr(ib, ci(mant)), ci(f64_ ? 1022 : 126));
    e = sel(tiny, b_.CreateSub(e, ci(mant)), e);
    const int64_t keep = f64_ ? int64_t(0x800FFFFFFFFFFFFFull) : int64_t(0x807fffff);
    const int64_t half = f64_ ? int64_t(0x3FE0000000000000ull) : int64_t(0x3f000000);
    Value* m = from_bits(b_.CreateOr(b_.CreateAnd(ib, ci(keep)), ci(half)));  // in [0.5, 1)
    Value* small = lt(m, c(0.70710678118654752440));
    e = sel(small, b_.CreateSub(e, ci(1)), e);
    m = sel(small, sub(add(m, m), c(1.0)), sub(m, c(1.0)));
    Value* z = mul(m, m);
    Value* y;
    if (!f64_) {
      y = mul(mul(m, z), poly(m, {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                                  -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                                  2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1}));
    } else {
      Value* p =
          poly(m, {1.01875663804580931796E-4, 4.97494994976747001425E-1, 4.70579119878881725854E0,
                   1.44989225341610930846E1, 1.79368678507819816313E1, 7.70838733755885391666E0});
      Value* q =
          poly(m, {1.0, 1.12873587189167450590E1, 4.52279145837532221105E1,
                   8.29875266912776603211E1, 7.11544750618563894466E1, 2.31251620126765340583E1});
      y = mul(m, div(mul(z, p), q));
    }
    Value* fe = b_.CreateSIToFP(e, ty_);
    y = add(y, mul(fe, c(f64_ ? -2.121944400546905827679e-4 : -2.12194440e-4)));
    y = sub(y, mul(z, c(0.5)));
    Value* r = add(add(m, y), mul(fe, c(0.693359375)));
    const double inf = std::numeric_limits<double>::infinity();
    r = sel(eq(x, c(inf)), c(inf), r);
    r = sel(eq(x, c(0.0)), c(-inf), r);
    // x < 0 or NaN: NaN.
    return sel(b_.CreateFCmpULT(x, c(0.0)), c(std::numeric_limits<double>::quiet_NaN()), r);
  }

  Value* tanh(Value* x) {  // f32 only
    Value* ax = fabs(x);
    Value* z = mul(x, x);
    Value* p = poly(z, {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1,
                        -3.33332819422E-1});
    Value* near0 = fma(mul(x, z), p, x);
    // 1 - 2 / (e^(2|x|) + 1): exp overflows to inf for large |x| and the result saturates at 1.
    Value* e = exp(add(ax, ax));
    Value* far = copysign(sub(c(1.0), div(c(2.0), add(e, c(1.0)))), x);
    return sel(lt(ax, c(0.625)), near0, far);
  }

  Value* erf(Value* x) {  // f32 only
    Value* t = fabs(x);
    Value* s = mul(x, x);
    // |x| > 0.927734375: 1 - exp(poly(t)); t is clamped where erf is 1 in float, so that the
    // polynomial never sees infinities.
    Value* tc = sel(gt(t, c(8.0)), c(8.0), t);
    Value* sc = mul(tc, tc);
    Value* r = fma(c(-1.72853470e-5), tc, c(3.83197126e-4));
    Value* u = fma(c(-3.88396438e-3), tc, c(2.42546219e-2));
    r = fma(r, sc, u);
    r = fma(r, tc, c(-1.06777877e-1));
    r = fma(r, tc, c(-6.34846687e-1));
    r = fma(r, tc, c(-1.28717512e-1));
    r = fma(r, tc, b_.CreateFNeg(tc));
    Value* far = copysign(sub(c(1.0), exp(r)), x);
    Value* near0 = poly(s, {-5.96761703e-4, 4.99119423e-3, -2.67681349e-2, 1.12819925e-1,
                            -3.76125336e-1, 1.28379166e-1});
    near0 = fma(near0, x, x);
    return sel(gt(t, c(0.927734375)), far, near0);
  }

  Value* sigmoid(Value* x) {
    // exp(-x) is inf for very negative x and 1 / inf = 0: no NaN.
    return div(c(1.0), add(c(1.0), exp(b_.CreateFNeg(x))));
  }

  /// sin (cosine = false) or cos of f32 x: the quadrant is found and reduced in double (exact for
  /// |x| below about 1.6e6), the polynomials run in float. Larger arguments, which need a
  /// Payne-Hanek reduction, go to libm: one branch per call (per vector) that models never take.
  Value* sincos(Value* x, bool cosine) {
    Type* dty = with_elem(ty_, b_.getDoubleTy());
    FloatEmitter d(b_, dty);
    Value* xd = b_.CreateFPExt(x, dty);
    Value* j = d.roundeven(d.mul(xd, d.c(0.63661977236758134308)));  // x * 2/pi
    // pi/2 in two parts (fdlibm's pio2_1, pio2_1t): j * pio2_1 is exact for j < 2^20.
    Value* rd = d.sub(d.sub(xd, d.mul(j, d.c(1.57079632673412561417e+00))),
                      d.mul(j, d.c(6.07710050650619224932e-11)));
    Value* r = b_.CreateFPTrunc(rd, ty_);
    Value* q = b_.CreateTrunc(d.to_int(j), ity_);
    if (cosine) q = b_.CreateAdd(q, ci(1));
    Value* z = mul(r, r);
    Value* s = fma(mul(r, z), poly(z, {-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1}), r);
    Value* cz = poly(z, {2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002});
    Value* cv = add(sub(c(1.0), mul(z, c(0.5))), mul(mul(z, z), cz));
    Value* odd = b_.CreateICmpNE(b_.CreateAnd(q, ci(1)), ci(0));
    Value* neg = b_.CreateICmpNE(b_.CreateAnd(q, ci(2)), ci(0));
    Value* v = sel(odd, cv, s);
    v = sel(neg, b_.CreateFNeg(v), v);

    // inf is "large" too (libm gives NaN); NaN is not and propagates through the polynomial.
    Value* large = gt(fabs(x), c(1.5e6));
    Value* any = ty_->isVectorTy() ? b_.CreateOrReduce(large) : large;
    llvm::BasicBlock* fast = b_.GetInsertBlock();
    llvm::Function* fn = fast->getParent();
    auto* slow = llvm::BasicBlock::Create(b_.getContext(), "sincos.libm", fn);
    auto* done = llvm::BasicBlock::Create(b_.getContext(), "sincos.done", fn);
    b_.CreateCondBr(any, slow, done,
                    llvm::MDBuilder(b_.getContext()).createUnlikelyBranchWeights());
    b_.SetInsertPoint(slow);
    Value* lib = sel(large, emit_libm_call(b_, cosine ? "cosf" : "sinf", {x}), v);
    llvm::BasicBlock* slow_end = b_.GetInsertBlock();
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    llvm::PHINode* phi = b_.CreatePHI(ty_, 2);
    phi->addIncoming(v, fast);
    phi->addIncoming(lib, slow_end);
    return phi;
  }

  /// std::pow for f32: log and exp in double, then the special cases of C's pow.
  Value* pow(Value* x, Value* y) {
    const double inf = std::numeric_limits<double>::infinity();
    Value* ax = fabs(x);
    Type* dty = with_elem(ty_, b_.getDoubleTy());
    Value* mag;
    {
      FloatEmitter d(b_, dty);
      Value* t = d.mul(b_.CreateFPExt(y, dty), d.log(b_.CreateFPExt(ax, dty)));
      mag = b_.CreateFPTrunc(d.exp(t), ty_);
    }
    // |x| == 1 with y = +-inf: 1 (y * log(1) is NaN).
    mag = sel(b_.CreateAnd(eq(ax, c(1.0)), eq(fabs(y), c(inf))), c(1.0), mag);
    Value* y_int = eq(y, trunc(y));  // false for NaN; true for +-inf
    // Odd integer: every float of magnitude >= 2^24 is even.
    Value* y_small = lt(fabs(y), c(16777216.0));
    Value* y_odd_bit = b_.CreateICmpNE(b_.CreateAnd(to_int(sel(y_small, y, c(0.0))), ci(1)), ci(0));
    Value* y_odd = b_.CreateAnd(b_.CreateAnd(y_int, y_small), y_odd_bit);
    Value* r = sel(y_odd, copysign(mag, x), mag);
    // A finite negative base with a non-integer exponent: NaN.
    Value* neg_finite = b_.CreateAnd(lt(x, c(0.0)), gt(x, c(-inf)));
    r = sel(b_.CreateAnd(neg_finite, b_.CreateNot(y_int)),
            c(std::numeric_limits<double>::quiet_NaN()), r);
    return sel(b_.CreateOr(eq(y, c(0.0)), eq(x, c(1.0))), c(1.0), r);
  }

 private:
  llvm::IRBuilderBase& b_;
  Type* ty_;
  llvm::IRBuilderBase::FastMathFlagGuard guard_;
  Type* ity_ = nullptr;
  bool f64_ = false;
};

/// The splat value of a constant float operand, if it is one.
const llvm::ConstantFP* constant_splat(Value* v) {
  if (auto* cf = llvm::dyn_cast<llvm::ConstantFP>(v)) return cf;
  if (auto* c = llvm::dyn_cast<llvm::Constant>(v)) {
    if (v->getType()->isVectorTy())
      return llvm::dyn_cast_or_null<llvm::ConstantFP>(c->getSplatValue());
  }
  return nullptr;
}

const char* libm_name(UnaryOp op, bool f64) {
  switch (op) {
    case UnaryOp::kTanh:
      return f64 ? "tanh" : "tanhf";
    case UnaryOp::kErf:
      return f64 ? "erf" : "erff";
    case UnaryOp::kSin:
      return f64 ? "sin" : "sinf";
    case UnaryOp::kCos:
      return f64 ? "cos" : "cosf";
    case UnaryOp::kTan:
      return f64 ? "tan" : "tanf";
    case UnaryOp::kAsin:
      return f64 ? "asin" : "asinf";
    case UnaryOp::kAcos:
      return f64 ? "acos" : "acosf";
    case UnaryOp::kAtan:
      return f64 ? "atan" : "atanf";
    case UnaryOp::kSinh:
      return f64 ? "sinh" : "sinhf";
    case UnaryOp::kCosh:
      return f64 ? "cosh" : "coshf";
    case UnaryOp::kAsinh:
      return f64 ? "asinh" : "asinhf";
    case UnaryOp::kAcosh:
      return f64 ? "acosh" : "acoshf";
    case UnaryOp::kAtanh:
      return f64 ? "atanh" : "atanhf";
    default:
      return nullptr;
  }
}

}  // namespace

Value* emit_libm_call(llvm::IRBuilderBase& b, const char* name, llvm::ArrayRef<Value*> args) {
  Type* ty = args[0]->getType();
  Type* sty = ty->getScalarType();
  llvm::Module* m = b.GetInsertBlock()->getModule();
  auto* fty = llvm::FunctionType::get(sty, llvm::SmallVector<Type*, 2>(args.size(), sty), false);
  llvm::Function* f = m->getFunction(name);
  if (!f) {
    f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m);
    // As with -fno-math-errno: no memory effects, so calls can be hoisted and CSE'd.
    f->setDoesNotThrow();
    f->setDoesNotAccessMemory();
    f->addFnAttr(llvm::Attribute::WillReturn);
  }
  auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(ty);
  if (!vt) return b.CreateCall(f, args);
  Value* out = llvm::PoisonValue::get(ty);
  for (unsigned i = 0; i < vt->getNumElements(); ++i) {
    llvm::SmallVector<Value*, 2> lane;
    for (Value* a : args) lane.push_back(b.CreateExtractElement(a, uint64_t(i)));
    out = b.CreateInsertElement(out, b.CreateCall(f, lane), uint64_t(i));
  }
  return out;
}

Value* emit_math_unary(llvm::IRBuilderBase& b, UnaryOp op, Value* x) {
  FloatEmitter f(b, x->getType());
  switch (op) {
    case UnaryOp::kExp:
      return f.exp(x);
    case UnaryOp::kLog:
      return f.log(x);
    case UnaryOp::kSigmoid:
      return f.sigmoid(x);
    case UnaryOp::kTanh:
      if (!f.f64()) return f.tanh(x);
      break;
    case UnaryOp::kErf:
      if (!f.f64()) return f.erf(x);
      break;
    case UnaryOp::kSin:
    case UnaryOp::kCos:
      if (!f.f64()) return f.sincos(x, op == UnaryOp::kCos);
      break;
    default:
      break;
  }
  const char* name = libm_name(op, f.f64());
  if (!name) return nullptr;
  return emit_libm_call(b, name, {x});
}

Value* emit_math_pow(llvm::IRBuilderBase& b, Value* x, Value* y) {
  FloatEmitter f(b, x->getType());
  if (const llvm::ConstantFP* cy = constant_splat(y)) {
    // Exponents that models use all the time, exactly as std::pow rounds them.
    const double e = cy->getValueAPF().convertToDouble();
    if (e == 1.0) return x;
    if (e == 2.0) return f.mul(x, x);
    if (e == -1.0) return f.div(f.c(1.0), x);
    if (e == 0.5) {
      // sqrt(-0) is -0 and sqrt(-inf) NaN, but pow gives +0 and +inf.
      Value* s = f.add(b.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, x), f.c(0.0));
      return f.sel(f.eq(x, f.c(-std::numeric_limits<double>::infinity())),
                   f.c(std::numeric_limits<double>::infinity()), s);
    }
  }
  if (f.f64()) return emit_libm_call(b, "pow", {x, y});
  return f.pow(x, y);
}

}  // namespace kiln::jit
