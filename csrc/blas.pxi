# Row-major GEMM on top of scipy's column-major BLAS, for float and double.
#
# A row-major matrix M (rows, cols) with row stride ld is, to column-major BLAS, M^T with the same
# leading dimension. So C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in column-major: the
# same call with the operands (and their transpose flags) swapped. Nothing is copied.

from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                      const floating* a, int lda, const floating* b, int ldb, floating beta,
                      floating* c, int ldc) noexcept nogil:
    """C (m, n) = alpha * op(A) (m, k) . op(B) (k, n) + beta * C, all row-major.

    lda, ldb, ldc are row strides in elements. Zero-sized products leave C scaled by beta.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef Py_ssize_t i, j
    if m <= 0 or n <= 0:
        return
    if k <= 0:
        for i in range(m):
            for j in range(n):
                c[i * ldc + j] = beta * c[i * ldc + j] if beta != 0 else 0
        return
    if lda < 1:
        lda = 1
    if ldb < 1:
        ldb = 1
    if ldc < 1:
        ldc = 1
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda, &beta, c, &ldc)
