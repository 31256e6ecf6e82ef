// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

interface IValidatorSet {
    function isActive(address validator) external view returns (bool);
    function activeCount() external view returns (uint256);
    function quorum() external view returns (uint256);
    function slash(address validator, address prover) external returns (uint256);
}

interface IRewardDistributor {
    function settle(uint64 epoch, bytes32 rewardsRoot, uint256 total) external;
}

/// @title EpochManager
/// @notice Accepts one report per closed epoch, only when signed (EIP-712, domain "depin" v1 of this
/// contract) by a quorum of distinct active validators. Signatures must come sorted by signer
/// address, strictly ascending, so a signer cannot be counted twice; OpenZeppelin's ECDSA rejects
/// malleable (high-s) signatures. Every report names the rules hash fixed at deployment (the
/// blueprint and the use case's rules): a validator running other rules is refused, loudly, instead
/// of silently never agreeing. Epochs strictly increase (an epoch that never settled may be
/// skipped; its emission is then never minted). A report must land before the end of the epoch after
/// next (`settlementDeadline`): then every validator knows, from the chain alone, which epoch the next
/// one's cumulative rewards build on (the last one settled before it), and an epoch that settles late
/// can never leave its rewards out of its successor's tree. Anyone may submit a fully signed report. Anyone may
/// prove equivocation — two different reports signed by one validator for one epoch — and the
/// validator's bond is slashed. Loops run over signatures only, which the validator cap bounds.
/// ReportAccepted names the signers: validators' rewards for an epoch go to them (in the next tree).
/// It also carries the receipts root (every device's outcome, one leaf each), which is signed with the
/// report but not stored: a storage slot per epoch would add ≈ 22,000 gas, and receipts are checked
/// off-chain against the event, as anyone can read it from the chain's logs.
contract EpochManager is EIP712 {
    struct EpochReport {
        uint64 epoch;
        bytes32 rulesHash;
        bytes32 readingsRoot;
        bytes32 rewardsRoot;
        bytes32 receiptsRoot;
        uint256 total;
        uint32 accepted;
    }

    bytes32 public constant EPOCH_REPORT_TYPEHASH = keccak256(
        "EpochReport(uint64 epoch,bytes32 rulesHash,bytes32 readingsRoot,bytes32 rewardsRoot,bytes32 receiptsRoot,uint256 total,uint32 accepted)"
    );

    error EpochNotIncreasing(uint64 epoch, uint64 nextEpoch);
    error EpochNotClosed(uint64 epoch, uint64 closesAt);
    error EpochSettlementClosed(uint64 epoch, uint64 deadline);
    error EpochZeroRoot();
    error EpochNoValidators();
    error EpochQuorumNotReached(uint256 signers, uint256 quorum);
    error EpochSignersNotSorted(address signer, address previous);
    error EpochSignerNotValidator(address signer);
    error EpochInvalidSignature(uint256 index);
    error EpochNotEquivocation();
    error EpochAlreadyPunished(address validator, uint64 epoch);
    error EpochInvalidConfig();
    error EpochRulesMismatch(bytes32 reported, bytes32 deployed);

    event ReportAccepted(
        uint64 indexed epoch,
        bytes32 readingsRoot,
        bytes32 rewardsRoot,
        bytes32 receiptsRoot,
        uint256 total,
        uint32 accepted,
        address[] signers,
        address indexed submitter
    );
    event EquivocationProven(address indexed validator, uint64 indexed epoch, address indexed prover, uint256 slashed);

    IValidatorSet private immutable _validators;
    IRewardDistributor private immutable _distributor;
    uint64 private immutable _genesisTime;
    uint64 private immutable _epochLength;
    bytes32 private immutable _rulesHash;

    uint64 private _nextEpoch;
    bool private _hasSettled;
    uint64 private _lastEpoch;
    mapping(uint64 epoch => bytes32) private _readingsRoots;
    mapping(address validator => mapping(uint64 epoch => bool)) private _punished;

    /// @param validators_ the ValidatorSet
    /// @param distributor_ the RewardDistributor
    /// @param genesisTime_ start of epoch 0 (unix seconds)
    /// @param epochLength_ seconds per epoch (> 0)
    /// @param rulesHash_ hash of the blueprint and the use case's rules every report must carry (≠ 0)
    constructor(
        IValidatorSet validators_,
        IRewardDistributor distributor_,
        uint64 genesisTime_,
        uint64 epochLength_,
        bytes32 rulesHash_
    ) EIP712("depin", "1") {
        if (epochLength_ == 0 || rulesHash_ == bytes32(0)) revert EpochInvalidConfig();
        _rulesHash = rulesHash_;
        _validators = validators_;
        _distributor = distributor_;
        _genesisTime = genesisTime_;
        _epochLength = epochLength_;
    }

    /// @notice Accepts `report` if `signatures` (sorted by signer, ascending) come from a quorum of
    /// distinct active validators; settles its rewards with the distributor.
    /// @param report the epoch report every signer signed
    /// @param signatures 65-byte ECDSA signatures over the report's EIP-712 digest
    function submitReport(EpochReport calldata report, bytes[] calldata signatures) external {
        if (report.epoch < _nextEpoch) revert EpochNotIncreasing(report.epoch, _nextEpoch);
        uint64 closesAt = epochEnd(report.epoch);
        if (block.timestamp < closesAt) revert EpochNotClosed(report.epoch, closesAt);
        uint64 deadline = closesAt + 2 * _epochLength; // settlementDeadline(report.epoch)
        if (block.timestamp >= deadline) revert EpochSettlementClosed(report.epoch, deadline);
        if (report.rulesHash != _rulesHash) revert EpochRulesMismatch(report.rulesHash, _rulesHash);
        if (report.readingsRoot == bytes32(0) || report.rewardsRoot == bytes32(0) || report.receiptsRoot == bytes32(0)) {
            revert EpochZeroRoot();
        }
        if (_validators.activeCount() == 0) revert EpochNoValidators();
        uint256 needed = _validators.quorum();
        if (signatures.length < needed) revert EpochQuorumNotReached(signatures.length, needed);

        bytes32 digest = hashReport(report);
        address previous = address(0);
        address[] memory signers = new address[](signatures.length);
        for (uint256 i = 0; i < signatures.length; ++i) {
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert EpochInvalidSignature(i);
            if (signer <= previous) revert EpochSignersNotSorted(signer, previous);
            if (!_validators.isActive(signer)) revert EpochSignerNotValidator(signer);
            previous = signer;
            signers[i] = signer;
        }

        _nextEpoch = report.epoch + 1;
        _lastEpoch = report.epoch;
        _hasSettled = true;
        _readingsRoots[report.epoch] = report.readingsRoot;
        emit ReportAccepted(
            report.epoch,
            report.readingsRoot,
            report.rewardsRoot,
            report.receiptsRoot,
            report.total,
            report.accepted,
            signers,
            msg.sender
        );
        _distributor.settle(report.epoch, report.rewardsRoot, report.total);
    }

    /// @notice Slashes the validator that signed both `a` and `b`: two different reports for one epoch.
    /// @return validator the slashed validator
    function proveEquivocation(
        EpochReport calldata a,
        bytes calldata signatureA,
        EpochReport calldata b,
        bytes calldata signatureB
    ) external returns (address validator) {
        bytes32 digestA = hashReport(a);
        bytes32 digestB = hashReport(b);
        if (a.epoch != b.epoch || digestA == digestB) revert EpochNotEquivocation();
        validator = ECDSA.recover(digestA, signatureA);
        if (ECDSA.recover(digestB, signatureB) != validator) revert EpochNotEquivocation();
        // one offence, one punishment: the same proof cannot take a bond posted later
        if (_punished[validator][a.epoch]) revert EpochAlreadyPunished(validator, a.epoch);
        _punished[validator][a.epoch] = true;
        uint256 slashed = _validators.slash(validator, msg.sender);
        emit EquivocationProven(validator, a.epoch, msg.sender, slashed);
    }

    /// @notice The EIP-712 digest validators sign for `report`.
    function hashReport(EpochReport calldata report) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    EPOCH_REPORT_TYPEHASH,
                    report.epoch,
                    report.rulesHash,
                    report.readingsRoot,
                    report.rewardsRoot,
                    report.receiptsRoot,
                    report.total,
                    report.accepted
                )
            )
        );
    }

    /// @notice The rules this network was deployed with (blueprint and use case): every report names them.
    function rulesHash() external view returns (bytes32) {
        return _rulesHash;
    }

    /// @notice The epoch running at the current block time (0 before genesis).
    function currentEpoch() external view returns (uint64) {
        if (block.timestamp < _genesisTime) return 0;
        return uint64((block.timestamp - _genesisTime) / _epochLength);
    }

    /// @notice The first second after `epoch`: its report is accepted from then on.
    function epochEnd(uint64 epoch) public view returns (uint64) {
        return _genesisTime + (epoch + 1) * _epochLength;
    }

    /// @notice The first second at which a report for `epoch` is refused: the end of the epoch after
    /// next. Validators judging epoch e + 1 build on e once it settled or this deadline passed.
    function settlementDeadline(uint64 epoch) public view returns (uint64) {
        return epochEnd(epoch) + 2 * _epochLength;
    }

    /// @notice The lowest epoch number a new report may carry.
    function nextEpoch() external view returns (uint64) {
        return _nextEpoch;
    }

    /// @notice The last settled epoch; `settled` is false before the first report.
    function lastEpoch() external view returns (bool settled, uint64 epoch) {
        return (_hasSettled, _lastEpoch);
    }

    /// @notice The readings root accepted for `epoch` (zero when it never settled): what proofs of
    /// inclusion of a reading are checked against. The rest of a report lives in its ReportAccepted event.
    function readingsRootOf(uint64 epoch) external view returns (bytes32) {
        return _readingsRoots[epoch];
    }

    function genesisTime() external view returns (uint64) {
        return _genesisTime;
    }

    function epochLength() external view returns (uint64) {
        return _epochLength;
    }

    function validatorSet() external view returns (IValidatorSet) {
        return _validators;
    }

    function distributor() external view returns (IRewardDistributor) {
        return _distributor;
    }

    /// @notice The EIP-712 domain separator of epoch reports.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }
}
