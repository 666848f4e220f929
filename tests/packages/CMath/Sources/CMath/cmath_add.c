#include "cmath_add.h"

int cmath_add(int a, int b) { return a + b; }
