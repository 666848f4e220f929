#ifndef CMATH_ADD_H
#define CMATH_ADD_H
/* A C function behind a Swift wrapper: the C-target package of the %install tests. */
int cmath_add(int a, int b);
#endif
