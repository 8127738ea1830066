/**
 * `dsv3 forward`: runs the model on a batch of token ids and writes logits at every position, the residual
 * stream after every block, the final-norm output and the routing of every MoE layer to a safetensors file.
 */
import type { Command } from 'commander';
import { fromFloatArray, fromInt32Array, type SafetensorsTensor } from '../../io/safetensors.js';
import { writeSafetensorsFile } from '../../io/safetensors_node.js';
import type { AttnImpl } from '../../model/attention.js';
import type { DeepSeekV3 } from '../../model/model.js';
import type { DType } from '../../tensor.js';
import type { NumericsProfile } from '../../model/numerics.js';
import type { RoutingOverride } from '../../model/topk.js';
import { dtypeOption, NUMERICS_HELP, parseAttn, parseNumerics, parsePositiveInt, printJSON, readIdsFile } from '../inputs.js';
import { addGuardOptions, openModel, printWarnings } from '../resources.js';
import { addBackendOptions, kernelsLabel, selectBackend, type BackendFlags } from '../backend.js';

/** The tensors `dsv3 forward` writes (names and layouts of issue 3 item 7). */
function forwardOutputs(model: DeepSeekV3, ids: number[][], attn: AttnImpl, numerics: NumericsProfile, route: RoutingOverride = {}): Map<string, SafetensorsTensor> {
  const out = model.forward(ids, { attn, numerics, ...route });
  const st = out.logits.dtype === 'float64' ? 'F64' : 'F32';
  const tensors = new Map<string, SafetensorsTensor>();
  tensors.set('logits', fromFloatArray(out.logits.data, out.logits.shape, st));
  out.hidden.forEach((h, i) => tensors.set(`hidden.${i}`, fromFloatArray(h.data, h.shape, st)));
  tensors.set('final_hidden', fromFloatArray(out.finalHidden.data, out.finalHidden.shape, st));
  const K = route.topk ?? model.config.numExpertsPerTok; // k' under --topk
  const N = out.B * out.T;
  for (const [layer, r] of out.routing) {
    // rows b·T + t; experts by descending selection score (torch.topk order), ties → lower index
    tensors.set(`routing.${layer}.indices`, fromInt32Array(r.indices, [N, K], 'I32'));
    tensors.set(`routing.${layer}.weights`, fromFloatArray(r.weights, [N, K], st));
  }
  return tensors;
}

/** Registers `dsv3 forward`. */
export function registerForwardCommand(program: Command): void {
  const cmd = program
    .command('forward')
    .description('run the model on token ids and write logits, hidden states and routing (safetensors)')
    .requiredOption('--model <dir>', 'model directory (config.json + model.safetensors or a sharded index)')
    .requiredOption('--input <ids.json>', 'JSON array of equal-length arrays of token ids (a batch)')
    .option('--attn <impl>', 'attention path: naive | absorb', parseAttn, 'naive' as AttnImpl)
    .addOption(dtypeOption())
    .option('--numerics <profile>', NUMERICS_HELP, parseNumerics, 'exact' as NumericsProfile)
    .option('--topk <k>', "route each token to k experts (default: the config's num_experts_per_tok)", parsePositiveInt('--topk'))
    .option('--topk-group <g>', "groups kept per token (default: the config's topk_group)", parsePositiveInt('--topk-group'))
    .requiredOption('--out <file>', 'output safetensors file')
    .option('--json', 'print a JSON summary on stdout');
  addGuardOptions(addBackendOptions(cmd), { weights: true, positions: true })
    .addHelpText('after', '\nExample:\n  dsv3 forward --model ./tiny --input ids.json --attn absorb --out out.safetensors')
    .action(async (o: { model: string; input: string; attn: AttnImpl; dtype: DType; numerics: NumericsProfile; out: string; json?: boolean; topk?: number; topkGroup?: number } & BackendFlags) => {
      const ids = readIdsFile(o.input);
      const kernels = kernelsLabel(await selectBackend(o), o.dtype);
      const [B, T] = [ids.length, ids[0]!.length];
      const { model, warnings } = openModel({ model: o.model, dtype: o.dtype }, () => ({
        positions: { count: T, of: o.input },
        ids: { rows: ids, of: o.input },
        work: { kind: 'forward', batch: B, positions: T, attn: o.attn },
      }));
      printWarnings('forward', warnings);
      const tensors = forwardOutputs(model, ids, o.attn, o.numerics, { topk: o.topk, topkGroup: o.topkGroup });
      writeSafetensorsFile(o.out, tensors, { command: 'forward', attn: o.attn, dtype: o.dtype, numerics: o.numerics });
      const summary = { out: o.out, batch: ids.length, positions: ids[0]!.length, attn: o.attn, dtype: o.dtype, numerics: o.numerics, kernels, tensors: [...tensors.keys()] };
      if (o.json === true) printJSON(summary);
      else process.stdout.write(`wrote ${tensors.size} tensors for ${ids.length}×${ids[0]!.length} tokens to ${o.out}\n`);
    });
}
