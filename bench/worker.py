# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""trytond-worker with the module imported from BENCH_MODULE_PATH

    BENCH_MODULE_PATH=var/bench/module-<commit> python -m bench.worker ...

It takes the arguments of trytond-worker and does what its script does."""
import os

from bench.run import use_module_path


def main():
    if os.environ.get('BENCH_MODULE_PATH'):
        use_module_path(os.environ['BENCH_MODULE_PATH'])
    import trytond.commandline as commandline
    from trytond.config import config

    parser = commandline.get_parser_worker()
    options = parser.parse_args()
    config.update_etc(options.configfile)
    commandline.config_log(options)

    # Import after the configuration is read
    import trytond.worker as worker
    from trytond.pool import Pool
    Pool.start()
    worker.work(options)


if __name__ == '__main__':
    main()
