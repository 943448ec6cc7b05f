"""The living demo workspace: `siyu demo` sets up a brand for the four industry types of seed 004 and
simulates weeks of people arriving through channel codes and doing what people do."""
