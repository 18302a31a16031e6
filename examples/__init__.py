"""Example user layers, correct and deliberately wrong, for the README, the tests and the CLI.

``naive_conv``     a correct hand-written layer (shift-and-add over the kernel taps)
``mistakes``       classic backprop mistakes, one subclass of ``NaiveConv`` each (``MISTAKES``)
``misbehaving``    layers that misbehave rather than compute a wrong gradient (``MISBEHAVING``)
``cs231n_style``   the cs231n ``conv_forward_naive`` / ``conv_backward_naive`` convention
"""
