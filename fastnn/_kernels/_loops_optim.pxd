# The optimizers' update loops over arena ranges (split from _loops.pxd): optim.pyx and the engine's update
# (_engine_update.pxd) call these. Dimensions and conventions: _loops.pxd's legend.
from libc.math cimport sqrt

from fastnn._kernels._typedefs cimport floating

# ---------------------------------------------------------------- optimizers (element ranges)
# Keras 3 update rules (keras/src/optimizers/*.py update_step), with the
# hyper-parameters cast to the dtype and the operations in _reference's order.
# Each is ONE fused pass over [n0, n1): memory-bound, so the arena is read once.

cdef extern from "fastnn_kernels.h" nogil:
    void fastnn_sgd_f32(float* w, const float* g, float* m, Py_ssize_t n0, Py_ssize_t n1, float lr, float mu,
                        int use_momentum, int nesterov)
    void fastnn_sgd_f64(double* w, const double* g, double* m, Py_ssize_t n0, Py_ssize_t n1, double lr,
                        double mu, int use_momentum, int nesterov)
    void fastnn_rmsprop_f32(float* w, const float* g, float* v, float* mom, float* mg, Py_ssize_t n0,
                            Py_ssize_t n1, float lr, float rho, float c, float momentum, float eps,
                            int use_momentum, int centered)
    void fastnn_rmsprop_f64(double* w, const double* g, double* v, double* mom, double* mg, Py_ssize_t n0,
                            Py_ssize_t n1, double lr, double rho, double c, double momentum, double eps,
                            int use_momentum, int centered)
    void fastnn_adam_f32(float* w, const float* g, float* m, float* v, float* vhat, Py_ssize_t n0,
                         Py_ssize_t n1, float a, float c1, float c2, float eps, int amsgrad)
    void fastnn_adam_f64(double* w, const double* g, double* m, double* v, double* vhat, Py_ssize_t n0,
                         Py_ssize_t n1, double a, double c1, double c2, double eps, int amsgrad)
    void fastnn_adadelta_f32(float* w, const float* g, float* ag, float* ad, Py_ssize_t n0, Py_ssize_t n1,
                             float lr, float rho, float c, float eps)
    void fastnn_adadelta_f64(double* w, const double* g, double* ag, double* ad, Py_ssize_t n0, Py_ssize_t n1,
                             double lr, double rho, double c, double eps)
    void fastnn_adagrad_f32(float* w, const float* g, float* acc, Py_ssize_t n0, Py_ssize_t n1, float lr,
                            float eps)
    void fastnn_adagrad_f64(double* w, const double* g, double* acc, Py_ssize_t n0, Py_ssize_t n1, double lr,
                            double eps)
    void fastnn_adamax_f32(float* w, const float* g, float* m, float* u, Py_ssize_t n0, Py_ssize_t n1, float lr,
                           float c1, float b2, float bc, float eps)
    void fastnn_adamax_f64(double* w, const double* g, double* m, double* u, Py_ssize_t n0, Py_ssize_t n1,
                           double lr, double c1, double b2, double bc, double eps)
    void fastnn_nadam_f32(float* w, const float* g, float* m, float* v, Py_ssize_t n0, Py_ssize_t n1, float lr,
                          float c1, float c2, float ut1, float d1, float cu, float d2, float bc2, float eps)
    void fastnn_nadam_f64(double* w, const double* g, double* m, double* v, Py_ssize_t n0, Py_ssize_t n1,
                          double lr, double c1, double c2, double ut1, double d1, double cu, double d2, double bc2,
                          double eps)
    void fastnn_lion_f32(float* w, const float* g, float* m, Py_ssize_t n0, Py_ssize_t n1, float lr, float b1,
                         float c1, float b2, float c2)
    void fastnn_lion_f64(double* w, const double* g, double* m, Py_ssize_t n0, Py_ssize_t n1, double lr,
                         double b1, double c1, double b2, double c2)
    void fastnn_grad_prep_f32(float* w, float* g, float* acc, Py_ssize_t n0, Py_ssize_t n1, float steps,
                              float clip, float scale, int use_scale, float wd, float lr)
    void fastnn_grad_prep_f64(double* w, double* g, double* acc, Py_ssize_t n0, Py_ssize_t n1, double steps,
                              double clip, double scale, int use_scale, double wd, double lr)
    void fastnn_grad_accumulate_f32(float* acc, const float* g, Py_ssize_t n0, Py_ssize_t n1)
    void fastnn_grad_accumulate_f64(double* acc, const double* g, Py_ssize_t n0, Py_ssize_t n1)


# The loops themselves are in csrc/fastnn_kernels.h (restrict pointers, AVX
# clone); these cast the hyper-parameters to the dtype exactly as _reference
# does (t(1 - rho), t(learning_rate), ...) and pick the dtype's version.
cdef inline void sgd_range(floating* w, const floating* g, floating* m, Py_ssize_t n0, Py_ssize_t n1,
                           double learning_rate, double momentum, bint nesterov) noexcept nogil:
    if floating is float:
        fastnn_sgd_f32(w, g, m, n0, n1, <float>learning_rate, <float>momentum, momentum != 0, nesterov)
    else:
        fastnn_sgd_f64(w, g, m, n0, n1, learning_rate, momentum, momentum != 0, nesterov)


cdef inline void rmsprop_range(floating* w, const floating* g, floating* v, floating* mom, floating* mg,
                               Py_ssize_t n0, Py_ssize_t n1, double learning_rate, double rho,
                               double momentum, double epsilon, bint centered) noexcept nogil:
    if floating is float:
        fastnn_rmsprop_f32(w, g, v, mom, mg, n0, n1, <float>learning_rate, <float>rho, <float>(1 - rho),
                           <float>momentum, <float>epsilon, momentum > 0, centered)
    else:
        fastnn_rmsprop_f64(w, g, v, mom, mg, n0, n1, learning_rate, rho, 1 - rho, momentum, epsilon,
                           momentum > 0, centered)


cdef inline void adam_range(floating* w, const floating* g, floating* m, floating* v, floating* vhat,
                            Py_ssize_t n0, Py_ssize_t n1, double alpha, double beta_1, double beta_2,
                            double epsilon, bint amsgrad) noexcept nogil:
    """alpha = lr sqrt(1 - b2^t) / (1 - b1^t), computed once per step by the caller."""
    if floating is float:
        fastnn_adam_f32(w, g, m, v, vhat, n0, n1, <float>alpha, <float>(1 - beta_1), <float>(1 - beta_2),
                        <float>epsilon, amsgrad)
    else:
        fastnn_adam_f64(w, g, m, v, vhat, n0, n1, alpha, 1 - beta_1, 1 - beta_2, epsilon, amsgrad)


cdef inline void adadelta_range(floating* w, const floating* g, floating* accum_grad,
                                floating* accum_delta, Py_ssize_t n0, Py_ssize_t n1,
                                double learning_rate, double rho, double epsilon) noexcept nogil:
    if floating is float:
        fastnn_adadelta_f32(w, g, accum_grad, accum_delta, n0, n1, <float>learning_rate, <float>rho,
                            <float>(1 - rho), <float>epsilon)
    else:
        fastnn_adadelta_f64(w, g, accum_grad, accum_delta, n0, n1, learning_rate, rho, 1 - rho, epsilon)


cdef inline void adagrad_range(floating* w, const floating* g, floating* acc, Py_ssize_t n0, Py_ssize_t n1,
                               double learning_rate, double epsilon) noexcept nogil:
    if floating is float:
        fastnn_adagrad_f32(w, g, acc, n0, n1, <float>learning_rate, <float>epsilon)
    else:
        fastnn_adagrad_f64(w, g, acc, n0, n1, learning_rate, epsilon)


cdef inline void adamax_range(floating* w, const floating* g, floating* m, floating* u, Py_ssize_t n0,
                              Py_ssize_t n1, double learning_rate, double beta_1, double beta_2, double bc,
                              double epsilon) noexcept nogil:
    """bc = 1 - beta_1^t, computed once per step by the caller."""
    if floating is float:
        fastnn_adamax_f32(w, g, m, u, n0, n1, <float>learning_rate, <float>(1 - beta_1), <float>beta_2,
                          <float>bc, <float>epsilon)
    else:
        fastnn_adamax_f64(w, g, m, u, n0, n1, learning_rate, 1 - beta_1, beta_2, bc, epsilon)


cdef inline void nadam_range(floating* w, const floating* g, floating* m, floating* v, Py_ssize_t n0,
                             Py_ssize_t n1, double learning_rate, double beta_1, double beta_2,
                             const double* k, double epsilon) noexcept nogil:
    """k = the step's scalars (u_{t+1}, 1 - prod_{t+1}, 1 - u_t, 1 - prod_t, 1 - beta_2^t): nadam_scalars."""
    if floating is float:
        fastnn_nadam_f32(w, g, m, v, n0, n1, <float>learning_rate, <float>(1 - beta_1), <float>(1 - beta_2),
                         <float>k[0], <float>k[1], <float>k[2], <float>k[3], <float>k[4], <float>epsilon)
    else:
        fastnn_nadam_f64(w, g, m, v, n0, n1, learning_rate, 1 - beta_1, 1 - beta_2, k[0], k[1], k[2], k[3], k[4],
                         epsilon)


cdef inline void lion_range(floating* w, const floating* g, floating* m, Py_ssize_t n0, Py_ssize_t n1,
                            double learning_rate, double beta_1, double beta_2) noexcept nogil:
    if floating is float:
        fastnn_lion_f32(w, g, m, n0, n1, <float>learning_rate, <float>beta_1, <float>(1.0 - beta_1),
                        <float>beta_2, <float>(1.0 - beta_2))
    else:
        fastnn_lion_f64(w, g, m, n0, n1, learning_rate, beta_1, 1.0 - beta_1, beta_2, 1.0 - beta_2)


cdef inline void grad_prep_range(floating* w, floating* g, floating* acc, Py_ssize_t n0, Py_ssize_t n1,
                                 double steps, double clipvalue, double scale, double weight_decay,
                                 double learning_rate) noexcept nogil:
    """Keras 3's treatment of a gradient before the update (accumulated mean, clipvalue or a norm clip's
    factor, decoupled weight decay of w); acc NULL: no accumulation."""
    if floating is float:
        fastnn_grad_prep_f32(w, g, acc, n0, n1, <float>steps, <float>clipvalue, <float>scale, scale != 1.0,
                             <float>weight_decay, <float>learning_rate)
    else:
        fastnn_grad_prep_f64(w, g, acc, n0, n1, steps, clipvalue, scale, scale != 1.0, weight_decay,
                             learning_rate)


cdef inline void grad_accumulate_range(floating* acc, const floating* g, Py_ssize_t n0, Py_ssize_t n1) noexcept nogil:
    if floating is float:
        fastnn_grad_accumulate_f32(acc, g, n0, n1)
    else:
        fastnn_grad_accumulate_f64(acc, g, n0, n1)
