"""numba intrinsics: single LLVM instructions numba has no spelling for (fused multiply-add, bit casts, prefetch,
a value hidden from constant folding)."""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def bits_as_float(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (a free reinterpretation)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def float_as_bits(typingctx, x):
    """The int64 whose bits are the IEEE-754 bits of the float64 ``x``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring ``array[index]`` (a contiguous 1-d array, any index: a prefetch never faults) into
    its caches, for a loop bound by the latency of random reads it can foresee."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        item = builder.gep(ary.data, [args[1]])
        byte_ptr = ir.IntType(8).as_pointer()
        signature_ir = ir.FunctionType(ir.VoidType(), [byte_ptr] + [ir.IntType(32)] * 3)
        fn = cgutils.get_or_insert_function(builder.module, signature_ir, "llvm.prefetch.p0")
        read, keep, data = (ir.Constant(ir.IntType(32), k) for k in (0, 3, 1))
        builder.call(fn, [builder.bitcast(item, byte_ptr), read, keep, data])
        return context.get_dummy_value()
    return types.void(array, index), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding (IEEE fused multiply-add): the same bits on every machine, one
    instruction where the CPU has FMA (x86-64 since 2013, every ARM64), a libm call elsewhere."""
    if not all(isinstance(x, types.Float) for x in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f64, [f64] * 3), "llvm.fma.f64")
        return builder.call(fn, [context.cast(builder, v, t, types.float64) for v, t in zip(args, signature.args)])
    return types.float64(a, b, c), codegen


# An empty inline asm that passes a float64 through a register of this CPU's vector unit (None: another CPU).
_FLOAT_REGISTER = {"x86_64": "x", "aarch64": "w", "arm64": "w"}.get(llvm.get_process_triple().split("-")[0])


@intrinsic
def opaque(typingctx, x):
    """x, hidden from LLVM's constant folding behind an empty inline asm. Why: numba's JIT code model reaches
    every constant through a 64-bit address of its own, so a SIMD loop that runs out of registers reloads
    each polynomial coefficient with two instructions on every iteration. An opaque coefficient is computed
    once before the loop instead (the asm reads no memory, so LLVM hoists it) and, when spilled, reloaded
    as the FMA's own operand. Elsewhere than x86-64 and ARM64, plain x."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], types.float64)
        if _FLOAT_REGISTER is None:
            return value
        f64 = ir.DoubleType()
        asm = ir.InlineAsm(ir.FunctionType(f64, [f64]), "", f"={_FLOAT_REGISTER},0", side_effect=False)
        return builder.call(asm, [value], attrs=("nounwind", "readnone"))
    return types.float64(x), codegen

